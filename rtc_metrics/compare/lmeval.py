"""Rows from lm-eval output: results JSON (reported values) and samples JSONL (recounted).

Results files of lm-eval 0.4.x key metrics as ``"<metric>,<filter>"``; older files
(0.3) have bare ``"<metric>"`` keys, which are read as filter ``none``. The structural
metrics are the same under every filter; the answer metric and Rpass@1 are not, so one
filter is chosen per task: ``--filter NAME`` where the task has it, else the first filter
the file lists that carries an answer metric.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rtc_metrics.compare.intervals import count_estimate, rate_estimate
from rtc_metrics.compare.rows import METRICS, MISSING, Estimate, Row, clean, split_checkpoint
from rtc_metrics.decompose import ClassCounts
from rtc_metrics.formats import TraceFormat, get_format
from rtc_metrics.io import InputError, iter_jsonl
from rtc_metrics.parsing import parse_trace
from rtc_metrics.stats import TraceSummary

__all__ = [
    "DATE_ID",
    "LoadOptions",
    "date_id_of",
    "find_sibling_results",
    "read_results_json",
    "rows_from_results",
    "rows_from_samples",
    "samples_task",
]

#: The date id lm-eval puts in file names: ``2026-11-26T14-39-09.849948``.
DATE_ID = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
_SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{DATE_ID})\.jsonl$")
_DATED_JSON = re.compile(rf"^(?P<stem>.+)_(?P<date>{DATE_ID})\.json$")

#: Keys that are not the task's answer metric (structural, plugin-internal, bookkeeping).
_NOT_ANSWER = frozenset(
    {"vr", "er", "tr", "mr", "ir", "rpass@1", "answer_rate", "acc_invalid", "bypass", "budget_hit"}
)
#: Preferred answer metrics when a task reports several.
_ANSWER_PREFERENCE = ("pass@1", "exact_match", "acc", "acc_norm", "pass_at_1", "em", "f1")
#: Structural class -> its rate key.
_CLASS_RATES = {"valid": "vr", "empty": "er", "truncated": "tr", "missing": "mr"}
#: Bookkeeping keys in ``results[task]`` that are not metrics.
_ENTRY_INFO = frozenset({"name", "alias", "sample_len", "sample_count", " ", ""})


@dataclass(frozen=True)
class LoadOptions:
    """Choices that apply to every input."""

    #: Reasoning format for recounting samples; overrides the run's ``rtc_format`` metadata.
    fmt: TraceFormat | None = None
    #: lm-eval filter whose answer metric and Rpass@1 are shown (default: the task's first).
    filter_name: str | None = None
    #: Answer metric name to show as pass@1 (default: the task's own, see module notes).
    metric: str | None = None


def date_id_of(path: Path) -> str | None:
    """The lm-eval date id in a results/samples file name, if any."""
    m = _SAMPLES_NAME.match(path.name) or _DATED_JSON.match(path.name)
    return m.group("date") if m else None


def _date_from_id(date_id: str | None) -> float | None:
    if not date_id:
        return None
    day, _, clock = date_id.partition("T")
    try:
        return datetime.fromisoformat(f"{day}T{clock.replace('-', ':')}").timestamp()
    except ValueError:
        return None


def read_results_json(path: Path) -> dict[str, Any]:
    """Load a results file (Python's json accepts lm-eval's bare NaN) and check its shape."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(
            f"{path}: not an lm-eval results file (no 'results' object); pass an lm-eval output "
            "folder, its results_<date>.json or samples_<task>_<date>.jsonl, or a monitor curve .jsonl"
        )
    return data


def _unsanitize(folder_name: str) -> str:
    # lm-eval names the output folder after the model with "/" turned into "__".
    return folder_name.replace("__", "/")


def _model_name(data: dict[str, Any], path: Path) -> str:
    """The model as the run recorded it: model_name (0.4.3+), else model_args, else config.model."""
    if isinstance(data.get("model_name"), str) and data["model_name"]:
        return data["model_name"]
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = config.get("model_args")
    if isinstance(args, str):
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    if isinstance(args, dict):
        for key in ("pretrained", "model", "path", "model_name", "peft", "engine"):
            if isinstance(args.get(key), str) and args[key]:
                return args[key]
    if isinstance(config.get("model"), str) and config["model"]:
        return config["model"]
    return _unsanitize(path.parent.name)


def _split_key(key: str) -> tuple[str, str]:
    metric, _, filt = key.partition(",")
    return metric, filt or "none"


def _answer_metric(names: list[str], preferred: str | None, configured: list[str]) -> str | None:
    candidates = [m for m in names if m not in _NOT_ANSWER and not m.startswith("rtc_")]
    if preferred is not None:
        return preferred if preferred in names else None
    for name in [*configured, *_ANSWER_PREFERENCE]:
        if name in candidates:
            return name
    return candidates[0] if candidates else None


def _configured_metrics(data: dict[str, Any], task: str) -> list[str]:
    config = (data.get("configs") or {}).get(task) or {}
    return [m["metric"] for m in config.get("metric_list") or [] if isinstance(m, dict) and "metric" in m]


def _task_n(data: dict[str, Any], task: str, entry: dict[str, Any]) -> int | None:
    counts = (data.get("n-samples") or {}).get(task)
    for value in (
        counts.get("effective") if isinstance(counts, dict) else None,
        entry.get("sample_len"),
        entry.get("sample_count"),
        ((data.get("groups") or {}).get(task) or {}).get("sample_count"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _choose_filter(by_filter: dict[str, dict[str, Any]], opts: LoadOptions, configured: list[str]) -> str:
    if opts.filter_name in by_filter:
        return opts.filter_name  # type: ignore[return-value]
    for filt, metrics in by_filter.items():
        if _answer_metric(list(metrics), opts.metric, configured) is not None:
            return filt
    return next(iter(by_filter))


def _date(data: dict[str, Any], path: Path) -> float:
    if isinstance(data.get("date"), int | float) and not isinstance(data.get("date"), bool):
        return float(data["date"])
    return _date_from_id(date_id_of(path)) or path.stat().st_mtime


def rows_from_results(path: Path, data: dict[str, Any], opts: LoadOptions, notes: list[str]) -> list[Row]:
    """One row per task (and group) in ``results`` that reports any metric."""
    model_name = _model_name(data, path)
    base, step = split_checkpoint(model_name)
    date = _date(data, path)
    rows = []
    no_structure = []
    for task, entry in data["results"].items():
        if not isinstance(entry, dict):
            raise InputError(f"{path}: results[{task!r}] is not an object; the file is not from lm-eval")
        by_filter: dict[str, dict[str, Any]] = {}
        for key, value in entry.items():
            metric, filt = _split_key(key)
            if key in _ENTRY_INFO or metric.endswith("_stderr"):
                continue
            stderr_key = f"{metric}_stderr,{filt}" if "," in key else f"{metric}_stderr"
            by_filter.setdefault(filt, {})[metric] = (value, entry.get(stderr_key))
        if not by_filter:
            continue  # a group header without aggregated metrics
        configured = _configured_metrics(data, task)
        filt = _choose_filter(by_filter, opts, configured)
        if opts.filter_name and filt != opts.filter_name:
            notes.append(f"{path}: task {task} has no filter {opts.filter_name!r}; showing {filt!r}")
        metrics = by_filter[filt]
        n = _task_n(data, task, entry)
        answer = _answer_metric(list(metrics), opts.metric, configured)
        estimates: dict[str, Estimate] = {}
        for key in ("vr", "er", "tr", "mr"):
            value, stderr = metrics.get(key, (None, None))
            estimates[key] = rate_estimate(value, n, stderr)
        value, stderr = metrics.get(answer, (None, None)) if answer else (None, None)
        estimates["pass@1"] = rate_estimate(value, n, stderr)
        # Rpass@1 is a rate over the valid generations: n_valid = VR × n.
        value, stderr = metrics.get("rpass@1", (None, None))
        estimates["rpass@1"] = rate_estimate(value, estimates["vr"].successes, stderr)
        if not any(k in metrics for k in ("vr", "er", "tr", "mr")):
            no_structure.append(task)
        rows.append(
            Row(
                model=base,
                step=step,
                task=task,
                metrics={k: estimates[k] for k in METRICS},
                n=n,
                source=str(path),
                kind="results",
                date=date,
                model_name=model_name,
                answer_metric=None if answer is None else f"{answer},{filt}",
                classes=_classes_from_results(metrics, n, data, task, opts),
            )
        )
    if no_structure:
        notes.append(
            f"{path}: no structural metrics (vr/er/tr/mr) for {', '.join(no_structure)}; "
            "shown as '–' (was the run made with the rtc tasks?)"
        )
    return rows


def _classes_from_results(
    metrics: dict[str, Any], n: int | None, data: dict[str, Any], task: str, opts: LoadOptions
) -> ClassCounts | None:
    """Per-class counts from the rates and RTCTask's ``rtc_<class>_correct`` means, when all exist.

    Those means use the task's own answer metric; with ``--metric`` naming another one the
    counts would not match the shown pass@1, so none are given.
    """
    meta = (((data.get("configs") or {}).get(task) or {}).get("metadata")) or {}
    own = meta.get("rtc_answer_metric_resolved") if isinstance(meta, dict) else None
    if not n or (opts.metric is not None and opts.metric != own):
        return None
    rates = {c: clean(metrics.get(key, (None,))[0]) for c, key in _CLASS_RATES.items()}
    correct = {c: clean(metrics.get(f"rtc_{c}_correct", (None,))[0]) for c in _CLASS_RATES}
    if any(v is None for v in (*rates.values(), *correct.values())):
        return None
    return ClassCounts({c: v * n for c, v in rates.items()}, {c: v * n for c, v in correct.items()})  # type: ignore[operator]


def find_sibling_results(samples_path: Path) -> Path | None:
    """The results file written by the same run as a samples file (same folder and date id)."""
    date_id = date_id_of(samples_path)
    if date_id is None:
        return None
    return next(iter(sorted(samples_path.parent.glob(f"*_{date_id}.json"))), None)


def samples_task(path: Path) -> str:
    """The task of ``samples_<task>_<date>.jsonl`` (the file stem for other names)."""
    m = _SAMPLES_NAME.match(path.name)
    return m.group("task") if m else path.stem.removeprefix("samples_")


def _format_for(task: str, results: dict[str, Any] | None, opts: LoadOptions, path: Path) -> TraceFormat:
    if opts.fmt is not None:
        return opts.fmt
    meta = (((results or {}).get("configs") or {}).get(task) or {}).get("metadata") or {}
    name = meta.get("rtc_format") if isinstance(meta, dict) else None
    if isinstance(name, str) and name:
        return get_format(name)
    raise InputError(
        f"{path}: cannot tell the reasoning format to recount this samples file; pass --format NAME "
        "(see `rtc formats`), or keep the run's results_<date>.json with metadata.rtc_format beside it"
    )


def _prompt(record: dict[str, Any]) -> str | None:
    args = record.get("arguments")
    if isinstance(args, dict):  # 0.4.x: {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}}
        first = args.get("gen_args_0")
        prompt = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
        prompt = args[0][0]  # older files: [[prompt, gen_kwargs]]
    else:
        prompt = None
    return prompt if isinstance(prompt, str) else None


def _raw_output(record: dict[str, Any], where: str) -> tuple[str, int]:
    resps = record.get("resps")
    if isinstance(resps, list) and resps and isinstance(resps[0], list) and resps[0]:
        first = resps[0]
        if isinstance(first[0], str):
            return first[0], len(first)
    raise InputError(
        f"{where}: 'resps' must be [[generated text, ...]] as lm-eval logs it, got {resps!r:.80}"
    )


def _correct(value: Any, where: str, metric: str) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        if math.isnan(value):
            return None
        if 0 <= value <= 1:
            return float(value)
    raise InputError(f"{where}: {metric!r} must be a number in [0, 1] to count as correctness, got {value!r}")


def rows_from_samples(path: Path, opts: LoadOptions, notes: list[str]) -> list[Row]:
    """Recount one samples file exactly: one structural result per document (the raw
    output of its first line, the prompt deciding pre-opening) and correctness from the
    chosen filter's line."""
    task = samples_task(path)
    sibling = find_sibling_results(path)
    results = read_results_json(sibling) if sibling is not None else None
    fmt = _format_for(task, results, opts, path)
    if results is not None:
        model_name = _model_name(results, sibling)  # type: ignore[arg-type]
        date = _date(results, sibling)  # type: ignore[arg-type]
    else:
        model_name = _unsanitize(path.parent.name)
        date = _date_from_id(date_id_of(path)) or path.stat().st_mtime
        notes.append(
            f"{path}: no results file beside it; model name {model_name!r} taken from the folder name"
        )

    status: dict[int, Any] = {}
    correct_by_filter: dict[str, dict[int, float | None]] = {}
    answer_by_filter: dict[str, str | None] = {}
    repeats = 1
    for lineno, record in iter_jsonl(path):
        where = f"{path}:{lineno}"
        doc_id = record.get("doc_id")
        if not isinstance(doc_id, int) or isinstance(doc_id, bool):
            raise InputError(f"{where}: no integer 'doc_id'; this is not an lm-eval samples line")
        raw, k = _raw_output(record, where)
        repeats = max(repeats, k)
        if doc_id not in status:
            status[doc_id] = parse_trace(raw, fmt, prompt=_prompt(record))
        filt = record.get("filter") if isinstance(record.get("filter"), str) else "none"
        if filt not in answer_by_filter:
            names = [x for x in record.get("metrics") or [] if isinstance(x, str)] or [
                key
                for key, value in record.items()
                if isinstance(value, int | float) and key not in ("doc_id",)
            ]
            answer_by_filter[filt] = _answer_metric(names, opts.metric, [])
        metric = answer_by_filter[filt]
        if metric is not None:
            value = record.get(metric)
            correct_by_filter.setdefault(filt, {})[doc_id] = (
                None if value is None else _correct(value, where, metric)
            )
    if not status:
        raise InputError(f"{path}: no samples (the file is empty)")
    if repeats > 1:
        notes.append(
            f"{path}: {repeats} samples per document; structure counts the first one, as take_first does"
        )

    filt = opts.filter_name if opts.filter_name in answer_by_filter else next(iter(answer_by_filter))
    if opts.filter_name and filt != opts.filter_name:
        notes.append(f"{path}: no filter {opts.filter_name!r}; showing {filt!r}")
    correct = correct_by_filter.get(filt, {})
    summary = TraceSummary()
    for doc_id, trace in status.items():
        summary.add(trace, correct.get(doc_id))
    estimates = {
        "vr": count_estimate(summary.n_valid, summary.n),
        "er": count_estimate(summary.n_empty, summary.n),
        "tr": count_estimate(summary.n_truncated, summary.n),
        "mr": count_estimate(summary.n_missing, summary.n),
        "pass@1": _scored(summary.n_correct, summary.n_scored, path),
        "rpass@1": _scored(summary.n_valid_correct, summary.n_valid_scored, path),
    }
    answer = answer_by_filter[filt]
    row = Row(
        model=split_checkpoint(model_name)[0],
        step=split_checkpoint(model_name)[1],
        task=task,
        metrics={k: estimates[k] for k in METRICS},
        n=summary.n,
        source=str(path),
        kind="samples",
        date=date,
        model_name=model_name,
        answer_metric=None if answer is None else f"{answer},{filt}",
        classes=ClassCounts.from_summary(summary) if summary.n_scored else None,
    )
    if results is not None:
        _check_against_results(row, results, sibling, filt, notes)  # type: ignore[arg-type]
    return [row]


def _scored(correct: float, scored: int, path: Path) -> Estimate:
    if scored == 0:
        return MISSING
    whole = round(correct)
    if abs(correct - whole) > 1e-9:  # partial credit: no binomial interval
        return Estimate(correct / scored)
    return count_estimate(whole, scored)


def _check_against_results(
    row: Row, results: dict[str, Any], sibling: Path, filt: str, notes: list[str]
) -> None:
    """Say so when the recount disagrees with what the run reported (e.g. another format)."""
    entry = results["results"].get(row.task) or {}
    for key in ("vr", "er", "tr", "mr", "rpass@1"):
        reported = clean(entry.get(f"{key},{filt}"))
        mine = row.value(key)
        if reported is not None and mine is not None and abs(reported - mine) > 1e-9:
            notes.append(
                f"{row.source}: recounted {key} = {mine:.4f} but {os.path.basename(sibling)} reports "
                f"{reported:.4f}; check the reasoning format (--format)"
            )
