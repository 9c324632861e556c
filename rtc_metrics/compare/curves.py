"""Rows from SFT collapse-monitor curve files (JSONL, one line per evaluation step).

A line looks like ``{"step": 150, "epoch": 0.5, "n": 64, "vr": 0.81, "er": 0.02,
"tr": 0.17, "mr": 0.0, "pass@1": 0.4, "rpass@1": 0.45, "model": "...",
"strategy": "mask"}``; ``pass@1``/``rpass@1`` may be null, ``task`` is optional
(default ``monitor``). Counts are rebuilt as ``round(rate × n)`` for Wilson intervals.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rtc_metrics.compare.intervals import rate_estimate
from rtc_metrics.compare.rows import METRICS, Row, split_checkpoint
from rtc_metrics.io import InputError, iter_jsonl

__all__ = ["CURVE_TASK", "is_curve_record", "rows_from_curve"]

#: Task name of curve rows whose lines do not name one.
CURVE_TASK = "monitor"


def is_curve_record(record: dict[str, Any]) -> bool:
    """True for a monitor curve line (it has a step and a valid rate)."""
    return "step" in record and "vr" in record


def _rate(record: dict[str, Any], key: str, where: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isnan(value) or 0 <= value <= 1)
    ):
        raise InputError(f"{where}: {key!r} must be a rate in [0, 1] or null, got {value!r}")
    return None if math.isnan(value) else float(value)


def rows_from_curve(path: Path, notes: list[str]) -> list[Row]:
    """One row per line; a step repeated for the same run (a resumed run) keeps the later line."""
    date = path.stat().st_mtime
    rows: dict[tuple[str, str | None, str, int], Row] = {}
    repeated = 0
    for lineno, record in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not is_curve_record(record):
            raise InputError(
                f"{where}: not a monitor curve line (needs 'step' and 'vr'; keys: {', '.join(record)})"
            )
        step = record["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InputError(f"{where}: 'step' must be a whole number >= 0, got {step!r}")
        n = record.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
            raise InputError(f"{where}: 'n' must be a positive whole number (prompts evaluated), got {n!r}")
        model_name = record.get("model") if isinstance(record.get("model"), str) else path.stem
        strategy = record.get("strategy") if isinstance(record.get("strategy"), str) else None
        task = record.get("task") if isinstance(record.get("task"), str) else CURVE_TASK
        values = {key: _rate(record, key, where) for key in METRICS}
        metrics = {key: rate_estimate(values[key], n) for key in ("vr", "er", "tr", "mr", "pass@1")}
        # Rpass@1 is a rate over the valid generations only.
        metrics["rpass@1"] = rate_estimate(values["rpass@1"], metrics["vr"].successes)
        base = split_checkpoint(model_name)[0]
        key = (base, strategy, task, step)
        repeated += key in rows
        rows[key] = Row(
            model=base,
            step=step,
            task=task,
            metrics={k: metrics[k] for k in METRICS},
            n=n,
            source=where,
            kind="curve",
            date=date,
            model_name=model_name,
            strategy=strategy,
        )
    if not rows:
        raise InputError(f"{path}: no curve lines (the file is empty)")
    if repeated:
        notes.append(f"{path}: {repeated} step(s) logged twice (a resumed run?); the later line wins")
    return list(rows.values())
