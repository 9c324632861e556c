"""Turn the command-line inputs (folders and files) into labelled, de-duplicated rows."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rtc_metrics.compare.curves import is_curve_record, rows_from_curve
from rtc_metrics.compare.lmeval import (
    LoadOptions,
    date_id_of,
    read_results_json,
    rows_from_results,
    rows_from_samples,
    samples_task,
)
from rtc_metrics.compare.rows import STRATEGIES, Row
from rtc_metrics.io import InputError, iter_jsonl

__all__ = ["LoadOptions", "Loaded", "load_inputs"]

#: When two duplicated runs have the same date, a recount beats reported values.
_KIND_PRIORITY = {"samples": 2, "results": 1, "curve": 0}
_EXPECTED = (
    "expected an lm-eval output folder, a results_<date>.json, a samples_<task>_<date>.jsonl "
    "or an SFT monitor curve .jsonl"
)


@dataclass
class Loaded:
    """Rows ready for a leaderboard, and what was decided on the way."""

    rows: list[Row]
    #: Human-readable statements: duplicates dropped, files skipped, disagreements.
    notes: list[str] = field(default_factory=list)
    #: Every file read, in order.
    sources: list[str] = field(default_factory=list)


def _sniff_jsonl(path: Path) -> str | None:
    """ "samples", "curve" or None, from the first record."""
    for _, record in iter_jsonl(path):
        if "doc_id" in record and ("resps" in record or "filtered_resps" in record):
            return "samples"
        return "curve" if is_curve_record(record) else None
    raise InputError(f"{path}: the file is empty; {_EXPECTED}")


def _rows_from_file(path: Path, opts: LoadOptions, notes: list[str]) -> list[Row]:
    if path.suffix == ".json":
        return rows_from_results(path, read_results_json(path), opts, notes)
    if path.suffix == ".jsonl":
        kind = _sniff_jsonl(path)
        if kind == "samples":
            return rows_from_samples(path, opts, notes)
        if kind == "curve":
            return rows_from_curve(path, notes)
        raise InputError(
            f"{path}: not an lm-eval samples file nor a monitor curve (unknown record keys); {_EXPECTED}"
        )
    raise InputError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; {_EXPECTED}")


def _is_results_name(path: Path) -> bool:
    return path.name.startswith("results") or date_id_of(path) is not None


def _rows_from_folder(folder: Path, opts: LoadOptions, notes: list[str], sources: list[str]) -> list[Row]:
    """Results files first; a samples file only when no results file of its run covers its task."""
    rows: list[Row] = []
    covered: set[tuple[Path, str | None, str]] = set()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if path.suffix == ".json" and _is_results_name(path):
            data = read_results_json(path)
            found = rows_from_results(path, data, opts, notes)
            rows += found
            covered |= {(path.parent, date_id_of(path), row.task) for row in found}
            sources.append(str(path))
    for path in files:
        if path.suffix != ".jsonl":
            continue
        kind = _sniff_jsonl(path) if path.stat().st_size else None
        if kind == "samples":
            covered_by_results = (path.parent, date_id_of(path), samples_task(path)) in covered
            found = [] if covered_by_results else rows_from_samples(path, opts, notes)
        elif kind == "curve":
            found = rows_from_curve(path, notes)
        else:
            notes.append(f"{path}: skipped (not a results, samples or monitor curve file)")
            continue
        if found:
            rows += found
            sources.append(str(path))
    if not rows:
        raise InputError(f"{folder}: no lm-eval results, samples or monitor curve files under this folder")
    return rows


def _is_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or bool(re.match(r"^[A-Za-z]:[\\/]", name))


def _label(rows: list[Row]) -> None:
    """Shorten local paths to their last folder names, using as many as keep labels apart,
    append a curve's strategy unless the name says it, and infer strategies from names."""
    paths = {row.model for row in rows if _is_path(row.model)}
    short: dict[str, str] = {}
    depth = 1
    pending = set(paths)
    while pending:
        parts = {p: p.replace("\\", "/").rstrip("/").split("/") for p in pending}
        candidate = {p: "/".join(parts[p][-depth:]) for p in pending}
        clashes = defaultdict(set)
        for p, c in candidate.items():
            clashes[c].add(p)
        for p, c in candidate.items():
            if len(clashes[c]) == 1 or depth >= len(parts[p]):
                short[p] = c
        pending -= set(short)
        depth += 1
    for row in rows:
        row.model = short.get(row.model, row.model)
        tokens = set(re.split(r"[^a-z0-9]+", row.model.lower()))
        if row.strategy is not None and row.strategy.lower() not in tokens:
            row.model = f"{row.model} [{row.strategy}]"
        if row.strategy is None:
            named = [s for s in STRATEGIES if s in tokens]
            row.strategy = named[0] if len(named) == 1 else None


def _when(row: Row) -> str:
    if row.date is None:
        return "no date"
    return datetime.fromtimestamp(row.date, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _deduplicate(rows: list[Row], notes: list[str]) -> list[Row]:
    """Keep the latest run per (model, step, task) and say which ones were dropped."""
    groups: dict[tuple[str, int | None, str], list[Row]] = defaultdict(list)
    for row in rows:
        group = groups[(row.model, row.step, row.task)]
        # The same file given twice (e.g. a folder and a file inside it) is one run, not a duplicate.
        if all(Path(r.source).resolve() != Path(row.source).resolve() for r in group):
            group.append(row)
    kept = []
    for group in groups.values():
        best = max(group, key=lambda r: (r.date or 0.0, _KIND_PRIORITY[r.kind], r.order))
        kept.append(best)
        if len(group) > 1:
            dropped = "; ".join(f"{r.source} ({_when(r)})" for r in group if r is not best)
            notes.append(
                f"duplicate runs of {best.label} on {best.task}: kept the latest, {best.source} "
                f"({_when(best)}); ignored {dropped}"
            )
    return kept


def load_inputs(paths: list[str | Path], options: LoadOptions | None = None) -> Loaded:
    """Read every input (folder or file) into rows; duplicated runs keep the latest."""
    if not paths:
        raise InputError(f"no inputs given; {_EXPECTED}")
    opts = options or LoadOptions()
    loaded = Loaded(rows=[])
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            rows = _rows_from_folder(path, opts, loaded.notes, loaded.sources)
        elif path.is_file():
            rows = _rows_from_file(path, opts, loaded.notes)
            loaded.sources.append(str(path))
        else:
            raise InputError(f"{path}: no such file or folder")
        for row in rows:
            row.order = len(loaded.rows)
            loaded.rows.append(row)
    _label(loaded.rows)
    loaded.rows = _deduplicate(loaded.rows, loaded.notes)
    return loaded
