"""Re-score lm-eval ``--log_samples`` output: the structure of every logged generation.

lm-eval writes, per run, ``results_<date>.json`` and one ``samples_<task>_<date>.jsonl``
per task (evaluation_tracker.py). A samples file has one line per (doc, filter): the raw
generations (``resps``) repeat on each filter line, correctness differs per filter. So:

- structure is counted once per doc (the doc's first line), from ``resps``, with
  "pre-opened" decided from the logged prompt ``arguments.gen_args_0.arg_0``;
- correctness is read per filter from the line's answer metric (``exact_match``, ...);
- the format comes from ``--format``, else from the results file's task config
  (``metadata.rtc_resolved_format``, written by rtc's tasks, or ``rtc_format``/
  ``rtc_open``+``rtc_close``).

The counts reproduce the in-run metrics exactly: vr/er/tr/mr are the shares of all
generations; rpass@1 is Σ valid∧correct / Σ valid, each doc's correctness counted once per
generation (as RTCTask's per-doc weighting does).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtc_metrics.diagnostics import classify_budget
from rtc_metrics.formats import TraceFormat, UnknownFormatError, get_format
from rtc_metrics.io import InputError, iter_jsonl
from rtc_metrics.parsing import parse_trace
from rtc_metrics.stats import TraceSummary, pooled

__all__ = [
    "ANSWER_METRICS",
    "LoggedRun",
    "TaskScore",
    "find_runs",
    "is_lmeval_output",
    "rescore",
    "score_samples",
]

#: Metric names taken as the answer metric, in order of preference (as rtc_tasks.task).
ANSWER_METRICS = ("exact_match", "acc", "pass@1", "acc_norm", "em", "f1")

_SAMPLES = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")
_RESULTS = re.compile(r"^(?:results|.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.json$")


@dataclass
class LoggedRun:
    """The files of one lm-eval run (they share a date id)."""

    #: The run's date id, e.g. ``2026-11-26T14-39-09.849948``.
    date: str
    #: results_<date>.json, when present.
    results_file: Path | None = None
    #: task name -> samples_<task>_<date>.jsonl.
    samples: dict[str, Path] = field(default_factory=dict)


@dataclass
class TaskScore:
    """One task's re-scored logs."""

    task: str
    #: The format the generations were parsed with.
    format: TraceFormat
    #: Docs seen (one structural result each).
    n_docs: int
    #: filter name -> summary (structure identical across filters, correctness per filter).
    filters: dict[str, TraceSummary]
    #: The metric read as correctness (None: structure only).
    answer_metric: str | None


def is_lmeval_output(path: str | os.PathLike[str]) -> bool:
    """True for a results directory, a results_*.json, or a samples_*.jsonl (by name or content)."""
    p = Path(path)
    if p.is_dir():
        return True
    if _SAMPLES.match(p.name) or (p.suffix == ".json" and _RESULTS.match(p.name)):
        return True
    if p.suffix == ".jsonl" and p.is_file():
        for _, record in iter_jsonl(p):
            return {"doc_id", "resps", "arguments"} <= record.keys()
    return False


def find_runs(path: str | os.PathLike[str]) -> list[LoggedRun]:
    """The runs found at ``path`` (a directory searched recursively, a results json or a samples jsonl)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    runs: dict[str, LoggedRun] = {}
    loose: list[Path] = []
    for f in files:
        if not f.is_file():
            continue
        m = _SAMPLES.match(f.name)
        if m:
            runs.setdefault(m["date"], LoggedRun(m["date"])).samples[m["task"]] = f
            continue
        m = _RESULTS.match(f.name)
        if m and f.suffix == ".json":
            runs.setdefault(m["date"], LoggedRun(m["date"])).results_file = f
        elif not p.is_dir() and f.suffix == ".jsonl":
            loose.append(f)  # a samples file renamed by the user
    if not p.is_dir():
        run = next(iter(runs.values()), None)
        if run is not None and run.results_file is not None and not run.samples:
            # A results json: its samples files sit next to it with the same date id.
            for g in sorted(run.results_file.parent.glob(f"samples_*_{run.date}.jsonl")):
                m = _SAMPLES.match(g.name)
                if m:
                    run.samples[m["task"]] = g
        elif run is not None and run.samples and run.results_file is None:
            sibling = next(iter(run.samples.values())).parent / f"results_{run.date}.json"
            if sibling.is_file():
                run.results_file = sibling
        for f in loose:
            runs.setdefault("", LoggedRun("")).samples[f.stem] = f
    found = [r for r in runs.values() if r.samples]
    if not found:
        raise InputError(
            f"{p}: no lm-eval samples files (samples_<task>_<date>.jsonl) found; "
            "run lm_eval with --log_samples --output_path DIR"
        )
    return sorted(found, key=lambda r: r.date)


def _read_results(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable lm-eval results JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an lm-eval results JSON (top level is {type(data).__name__})")
    return data


def _format_from_config(config: dict[str, Any]) -> TraceFormat | None:
    meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    resolved = meta.get("rtc_resolved_format")
    if isinstance(resolved, dict) and resolved.get("open") and resolved.get("close"):
        try:
            fmt = get_format(str(resolved.get("name")))
            if fmt.open == resolved["open"] and fmt.close == resolved["close"]:
                return fmt
        except UnknownFormatError:
            pass
        return TraceFormat(
            open=resolved["open"],
            close=resolved["close"],
            open_variants=tuple(resolved.get("open_variants") or ()),
            close_variants=tuple(resolved.get("close_variants") or ()),
        )
    if meta.get("rtc_format"):
        return get_format(str(meta["rtc_format"]))
    if meta.get("rtc_open") and meta.get("rtc_close"):
        return TraceFormat(open=str(meta["rtc_open"]), close=str(meta["rtc_close"]))
    return None


def _prompt_of(record: dict[str, Any], where: str) -> str:
    args = record.get("arguments")
    if isinstance(args, dict):
        first = args.get("gen_args_0")
        prompt = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(args, list | tuple) and args and isinstance(args[0], list | tuple) and args[0]:
        prompt = args[0][0]  # simple_evaluate's in-memory samples: [(prompt, gen_kwargs)]
    else:
        prompt = None
    if not isinstance(prompt, str):
        raise InputError(
            f"{where}: no logged prompt (arguments.gen_args_0.arg_0); is this a generate_until task?"
        )
    return prompt


def _generations_of(record: dict[str, Any], where: str) -> list[str]:
    resps = record.get("resps")
    if not (
        isinstance(resps, list)
        and resps
        and isinstance(resps[0], list)
        and all(isinstance(r, str) for r in resps[0])
    ):
        raise InputError(f"{where}: 'resps' must be [[text, ...]] as lm-eval logs it, got {str(resps)[:80]}")
    return resps[0]


def _correct(record: dict[str, Any], metric: str, where: str) -> float | None:
    if metric not in record:
        raise InputError(f"{where}: the line has no {metric!r} value (the task's answer metric)")
    value = record[metric]
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InputError(f"{where}: {metric!r} = {value!r} is not a correctness in [0, 1]")
    return float(value)


def score_samples(
    records: Any,
    fmt: TraceFormat,
    *,
    source: str = "samples",
    answer_metric: str | None = None,
    prefixed: bool | None = None,
    task: str = "task",
) -> TaskScore:
    """Re-score one task's logged samples: ``records`` yields ``(line_number, record)``.

    ``prefixed`` forces the pre-opened state (as the run's ``rtc_prefixed`` did); None
    decides it per doc from the logged prompt.
    """
    # doc_id -> (parses, raw generations, per generation (trace tokens, budget hit) or None)
    parsed: dict[Any, tuple[list[Any], list[str], list[tuple[int | None, bool | None]]]] = {}
    summaries: dict[str, TraceSummary] = {}
    seen: set[tuple[Any, str]] = set()
    forced = None if prefixed is None else fmt.with_prefixed(prefixed)
    for lineno, record in records:
        where = f"{source}:{lineno}"
        if "doc_id" not in record or "filter" not in record:
            raise InputError(f"{where}: not an lm-eval sample line (needs doc_id, filter, resps, arguments)")
        doc_id, filter_key = record["doc_id"], str(record["filter"])
        if (doc_id, filter_key) in seen:
            raise InputError(
                f"{where}: doc {doc_id} appears twice for filter {filter_key!r} (two runs appended to one "
                "file? lm-eval opens samples files in append mode); score one run's file"
            )
        seen.add((doc_id, filter_key))
        generations = _generations_of(record, where)
        if doc_id not in parsed:
            prompt = _prompt_of(record, where)
            parses = [
                parse_trace(g, forced) if forced else parse_trace(g, fmt, prompt=prompt) for g in generations
            ]
            budget = _logged_budget(record.get("rtc_sample"), len(generations))
            parses = [
                classify_budget(p, hit) if hit is not None else p
                for p, (_, hit) in zip(parses, budget, strict=True)
            ]
            parsed[doc_id] = (parses, generations, budget)
        elif parsed[doc_id][1] != generations:
            raise InputError(f"{where}: doc {doc_id}'s generations differ from its other filter lines")
        if answer_metric is None:
            answer_metric = next((m for m in ANSWER_METRICS if m in (record.get("metrics") or record)), None)
        correct = _correct(record, answer_metric, where) if answer_metric else None
        summary = summaries.setdefault(filter_key, TraceSummary())
        parses, _, budget = parsed[doc_id]
        for trace, (tokens, hit) in zip(parses, budget, strict=True):
            summary.add(trace, correct, tokens, hit)
    if not parsed:
        raise InputError(f"{source}: no sample lines (the file is empty)")
    counts = {f: s.n for f, s in summaries.items()}
    total = sum(len(p) for p, _, _ in parsed.values())
    short = [f for f, n in counts.items() if n != total]
    if short:
        raise InputError(
            f"{source}: filter(s) {', '.join(short)} log fewer docs than others (a partial file?); "
            "re-run, or score a complete samples file"
        )
    return TaskScore(task, fmt, len(parsed), summaries, answer_metric)


def _logged_budget(sample: Any, k: int) -> list[tuple[int | None, bool | None]]:
    """Per generation (trace tokens, budget hit) from RTCTask's ``rtc_sample`` record; unknowns as None.

    Token counts are taken only when exact (``tokens_approx`` false); budget hits either way.
    """
    records = sample.get("repeats") if isinstance(sample, dict) and "repeats" in sample else [sample]
    if not isinstance(records, list) or len(records) != k:
        return [(None, None)] * k
    out: list[tuple[int | None, bool | None]] = []
    for rec in records:
        if not isinstance(rec, dict):
            out.append((None, None))
            continue
        tokens = rec.get("trace_tokens")
        exact = isinstance(tokens, int) and rec.get("tokens_approx") is False and rec.get("status") != "missing"
        hit = rec.get("budget_hit")
        out.append((tokens if exact else None, hit if isinstance(hit, bool) else None))
    return out


def _config_metadata(results: dict[str, Any], task: str) -> dict[str, Any]:
    config = (results.get("configs") or {}).get(task) or {}
    meta = config.get("metadata") if isinstance(config, dict) else None
    return meta if isinstance(meta, dict) else {}


def rescore(path: str | os.PathLike[str], fmt: TraceFormat | None = None) -> dict[str, Any]:
    """Re-score every run at ``path``; ``fmt`` overrides the format recorded in the results file.

    Returns ``{"runs": [{"date", "results_file", "tasks": {task: {...}}, "groups": {...}}]}``
    where each task has ``format``, ``n_docs``, ``answer_metric`` and per filter a
    :meth:`TraceSummary.to_dict`; groups (from the results file's ``group_subtasks``) are
    pooled over their member tasks' docs.
    """
    out_runs = []
    for run in find_runs(path):
        results = _read_results(run.results_file)
        task_scores: dict[str, TaskScore] = {}
        for task, samples_path in sorted(run.samples.items()):
            config = (results.get("configs") or {}).get(task) or {}
            task_fmt = fmt or _format_from_config(config if isinstance(config, dict) else {})
            if task_fmt is None:
                raise InputError(
                    f"{samples_path}: the reasoning format is not recorded"
                    + ("" if run.results_file else " (no results_<date>.json beside it)")
                    + "; name it with --format NAME or --open S --close S"
                )
            meta = _config_metadata(results, task)
            forced = meta.get("rtc_prefixed")
            prefixed = None if forced in (None, "auto") else str(forced).lower() in {"1", "true", "yes"}
            task_scores[task] = score_samples(
                iter_jsonl(samples_path),
                task_fmt,
                source=str(samples_path),
                answer_metric=meta.get("rtc_answer_metric_resolved") or meta.get("rtc_answer_metric"),
                prefixed=prefixed,
                task=task,
            )
        groups = {}
        for group, members in (results.get("group_subtasks") or {}).items():
            leaves = _leaves(group, results.get("group_subtasks") or {})
            scored = [task_scores[t] for t in leaves if t in task_scores]
            if not members or not scored:
                continue
            filters = set.intersection(*(set(s.filters) for s in scored))
            groups[group] = {f: pooled(s.filters[f] for s in scored).to_dict() for f in sorted(filters)}
        out_runs.append(
            {
                "date": run.date,
                "results_file": str(run.results_file) if run.results_file else None,
                "tasks": {
                    t: {
                        "format": s.format.name,
                        "n_docs": s.n_docs,
                        "answer_metric": s.answer_metric,
                        "filters": {f: summ.to_dict() for f, summ in s.filters.items()},
                    }
                    for t, s in task_scores.items()
                },
                "groups": groups,
            }
        )
    return {"runs": out_runs}


def _leaves(name: str, subtasks: dict[str, list[str]]) -> list[str]:
    if name not in subtasks:
        return [name]
    return [leaf for child in subtasks[name] for leaf in _leaves(child, subtasks)]
