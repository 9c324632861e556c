"""Examples of each structural class, for reading failures (``rtc score --show STATUS``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtc_metrics.formats import TraceFormat
from rtc_metrics.io import InputError, iter_jsonl
from rtc_metrics.lmeval_logs import _format_from_config, _generations_of, _prompt_of, _read_results, find_runs
from rtc_metrics.parsing import ParsedTrace, TraceStatus, parse_trace
from rtc_metrics.scoring import TEXT_FIELDS

__all__ = ["SHOW_CHOICES", "Example", "examples_jsonl", "examples_lmeval", "print_examples"]

#: Accepted by --show: a status, or "all" for every class.
SHOW_CHOICES = (*(s.value for s in TraceStatus), "all")
#: Characters of a trace shown: its start and its end, with the middle elided.
_TRACE_CHARS = 600


@dataclass(frozen=True)
class Example:
    """One generation picked for display."""

    #: ``file:line`` (and task/doc for lm-eval samples).
    where: str
    trace: ParsedTrace
    #: Extra facts from a logged ``rtc_sample`` record (tokens, budget), as text.
    note: str = ""


def _wanted(show: str) -> set[TraceStatus]:
    if show not in SHOW_CHOICES:
        raise InputError(f"--show {show!r}: choose one of {', '.join(SHOW_CHOICES)}")
    return set(TraceStatus) if show == "all" else {TraceStatus(show)}


def _take(examples: Iterable[Example], show: str, k: int) -> list[Example]:
    wanted = _wanted(show)
    picked: dict[TraceStatus, list[Example]] = {s: [] for s in TraceStatus if s in wanted}
    for ex in examples:
        bucket = picked.get(ex.trace.status)
        if bucket is not None and len(bucket) < k:
            bucket.append(ex)
        if all(len(b) >= k for b in picked.values()):
            break
    return [ex for bucket in picked.values() for ex in bucket]


def examples_jsonl(
    path: str | os.PathLike[str],
    fmt: TraceFormat,
    show: str,
    k: int = 3,
    *,
    text_field: str | None = None,
    prompt_field: str | None = None,
) -> list[Example]:
    """Up to ``k`` examples of each wanted class from a plain JSONL of outputs (file order)."""

    def gen() -> Iterable[Example]:
        field = text_field
        for lineno, record in iter_jsonl(path):
            field = field or next((f for f in TEXT_FIELDS if f in record), None)
            text = record.get(field) if field else None
            if not isinstance(text, str):
                raise InputError(f"{path}:{lineno}: no output text (name its field with --text-field)")
            prompt = record.get(prompt_field) if prompt_field else None
            yield Example(
                f"{path}:{lineno}", parse_trace(text, fmt, prompt=prompt if isinstance(prompt, str) else None)
            )

    return _take(gen(), show, k)


def _note(sample: object) -> str:
    if not isinstance(sample, dict):
        return ""
    about = "≈" if sample.get("tokens_approx") else ""
    parts = [f"{about}{sample.get('trace_tokens')} trace tokens", f"{about}{sample.get('gen_tokens')} generated"]
    if sample.get("budget_hit"):
        parts.append(f"hit max_gen_toks={sample.get('max_gen_toks')}")
    return ", ".join(parts)


def examples_lmeval(path: str | os.PathLike[str], fmt: TraceFormat | None, show: str, k: int = 3) -> list[Example]:
    """Up to ``k`` examples of each wanted class per task from lm-eval ``--log_samples`` output.

    The doc's first generation is parsed (its logged prompt decides pre-opening); when the
    line carries rtc's ``rtc_sample`` record, its anomalies (with the budget cause) are shown.
    """
    out: list[Example] = []
    for run in find_runs(path):
        results = _read_results(run.results_file)
        for task, samples_path in sorted(run.samples.items()):
            config = (results.get("configs") or {}).get(task) or {}
            task_fmt = fmt or _format_from_config(config if isinstance(config, dict) else {})
            if task_fmt is None:
                raise InputError(f"{samples_path}: the reasoning format is not recorded; name it with --format NAME")

            def gen(
                samples_path: os.PathLike[str] = samples_path, task_fmt: TraceFormat = task_fmt, task: str = task
            ) -> Iterable[Example]:
                seen = set()
                for lineno, record in iter_jsonl(samples_path):
                    where = f"{samples_path}:{lineno}"
                    short = f"{os.path.basename(samples_path)}:{lineno}"
                    if record.get("doc_id") in seen:
                        continue
                    seen.add(record.get("doc_id"))
                    text = _generations_of(record, where)[0]
                    trace = parse_trace(text, task_fmt, prompt=_prompt_of(record, where))
                    sample = record.get("rtc_sample")
                    if isinstance(sample, dict) and isinstance(sample.get("anomalies"), list):
                        extra = tuple(a for a in sample["anomalies"] if a not in {x.value for x in trace.anomalies})
                        trace = ParsedTrace(
                            trace.status, trace.reasoning, trace.answer, (*trace.anomalies, *extra), trace.prefixed
                        )  # type: ignore[arg-type]
                    yield Example(f"{task} doc {record.get('doc_id')} ({short})", trace, _note(sample))

            out += _take(gen(), show, k)
    return out


def _elide(text: str, limit: int = _TRACE_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} … [{len(text) - limit} chars] … {text[-half:]}"


def print_examples(examples: list[Example], console: Console | None = None) -> None:
    """One table per class: where, trace and answer side by side, anomalies below."""
    console = console or Console()
    if not examples:
        console.print("no generations of that class")
        return
    for status in TraceStatus:
        mine = [ex for ex in examples if ex.trace.status is status]
        if not mine:
            continue
        table = Table(
            title=f"{status.value}: {len(mine)} example(s)", show_lines=True, title_justify="left", expand=True
        )
        table.add_column("where", overflow="fold", ratio=2)
        table.add_column("trace", overflow="fold", ratio=5)
        table.add_column("answer", overflow="fold", ratio=2)
        for ex in mine:
            info = ", ".join(str(a) for a in ex.trace.anomalies)
            where = Text(ex.where)
            if info or ex.note:
                where.append("\n" + "; ".join(x for x in (info, ex.note) if x), style="yellow")
            # Text objects: model output is never read as rich markup.
            table.add_row(where, Text(_elide(ex.trace.reasoning) or "∅", style="dim"), Text(ex.trace.answer or "∅"))
        console.print(table)
