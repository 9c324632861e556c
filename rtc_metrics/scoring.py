"""Score a JSONL file of model outputs (one generation per line), streaming."""

from __future__ import annotations

import math
import os
from typing import Any

from rtc_metrics.formats import TraceFormat
from rtc_metrics.io import InputError, iter_jsonl
from rtc_metrics.parsing import parse_trace
from rtc_metrics.stats import TraceSummary

__all__ = ["TEXT_FIELDS", "score_jsonl"]

#: Field names tried, in order, when no --text-field is given.
TEXT_FIELDS = ("text", "output", "response", "completion", "generation", "model_output")


def _correct_value(value: Any, path: Any, lineno: int, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and (math.isnan(value) or 0 <= value <= 1):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return float(value.strip().lower() in {"true", "1"})
    raise InputError(f"{path}:{lineno}: field {field!r} must be a boolean or a number in [0, 1], got {value!r}")


def score_jsonl(
    path: str | os.PathLike[str],
    fmt: TraceFormat,
    *,
    text_field: str | None = None,
    correct_field: str | None = None,
    prompt_field: str | None = None,
    tokenizer: Any = None,
) -> TraceSummary:
    """Parse every line's generation under ``fmt`` and count it.

    With a ``tokenizer`` (anything with ``encode(text, add_special_tokens=False)``) trace
    lengths are also counted in tokens.

    ``text_field`` defaults to the first of :data:`TEXT_FIELDS` present in the first
    record. ``prompt_field``, when given, holds the exact prompt each output was
    generated from and decides per line whether the trace was pre-opened.
    Memory stays flat: lines are read, parsed and counted one at a time.
    """
    summary = TraceSummary()
    for lineno, record in iter_jsonl(path):
        if text_field is None:
            text_field = next((f for f in TEXT_FIELDS if f in record), None)
            if text_field is None:
                raise InputError(
                    f"{path}:{lineno}: no output field found (looked for {', '.join(TEXT_FIELDS)}); "
                    f"name it with --text-field (fields here: {', '.join(sorted(record)) or 'none'})"
                )
        text = record.get(text_field)
        if not isinstance(text, str):
            raise InputError(
                f"{path}:{lineno}: field {text_field!r} must be a string, got "
                f"{'nothing' if text is None else type(text).__name__}"
            )
        prompt = None
        if prompt_field is not None:
            prompt = record.get(prompt_field)
            if not isinstance(prompt, str):
                raise InputError(f"{path}:{lineno}: prompt field {prompt_field!r} must be a string")
        correct = None
        if correct_field is not None:
            if correct_field not in record:
                raise InputError(f"{path}:{lineno}: no field {correct_field!r} (given by --correct-field)")
            correct = _correct_value(record[correct_field], path, lineno, correct_field)
        trace = parse_trace(text, fmt, prompt=prompt)
        n_tokens = None
        if tokenizer is not None and trace.status != "missing":
            n_tokens = len(tokenizer.encode(trace.reasoning, add_special_tokens=False))
        summary.add(trace, correct, n_tokens)
    if summary.n == 0:
        raise InputError(f"{path}: no records (the file is empty)")
    return summary
