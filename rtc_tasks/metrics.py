"""Per-document structural metrics, their aggregations, and pooled group ``rpass@1``.

Per document (one value each, whatever the number of filters or repeats):

- ``vr``, ``er``, ``tr``, ``mr``: the share of the doc's generations that are valid, empty,
  truncated, missing (0/1 with one generation); aggregated with lm-eval's ``mean``, so
  they get its closed-form stderr and size-weighted group means are exact.
- ``rtc_valid_correct``: ``vr × correct`` (the doc's answer metric); ``mean``-aggregated.
  It is the helper that makes the pooled group ratio possible.
- ``rpass@1``: the pair ``(vr, vr × correct)``; :func:`rpass_at_1` aggregates the list to
  Σ valid∧correct / Σ valid, a true ratio. lm-eval reports its stderr as "N/A" (a custom
  aggregation is never bootstrapped); rtc's own tools give a Wilson interval.

Groups. lm-eval's ``Group.aggregate`` can only take size-weighted means of task values
(api/group.py), which is wrong for a ratio. :func:`install_group_pooling` wraps it once:
for ``rpass@1`` in a group's ``aggregate_metric_list`` it reports
Σ_t rtc_valid_correct_t·n_t / Σ_t vr_t·n_t (n_t = the task's sample_len), which is exactly
the pooled Σ valid∧correct / Σ valid, and "N/A" as stderr. Every other metric goes through
lm-eval's code unchanged. The wrapper is installed when :mod:`rtc_tasks.task` is imported,
which lm-eval does for every rtc task, so plain ``lm_eval`` runs get it too.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "HIGHER_IS_BETTER",
    "RATE_KEYS",
    "RPASS_KEY",
    "VALID_CORRECT_KEY",
    "install_group_pooling",
    "pooled_group_rpass",
    "rpass_at_1",
]

log = logging.getLogger(__name__)

#: The four structural rates (per doc: share of its generations in that class).
RATE_KEYS = ("vr", "er", "tr", "mr")
#: Conditional accuracy among valid-trace generations.
RPASS_KEY = "rpass@1"
#: Helper key: valid share × correctness, so groups can pool rpass@1.
VALID_CORRECT_KEY = "rtc_valid_correct"

HIGHER_IS_BETTER = {
    "vr": True,
    "er": False,
    "tr": False,
    "mr": False,
    VALID_CORRECT_KEY: True,
    RPASS_KEY: True,
}


def rpass_at_1(items: Sequence[Sequence[float]]) -> float | None:
    """Σ valid∧correct / Σ valid over per-doc ``(valid, valid_correct)`` pairs.

    Returns None (JSON null, shown blank in lm-eval's table) when no generation has a
    valid trace: the ratio is undefined, and NaN would end up as a bare ``NaN`` in the
    results JSON.
    """
    valid = math.fsum(float(v) for v, _ in items)
    valid_correct = math.fsum(float(c) for _, c in items)
    return valid_correct / valid if valid > 0 else None


def pooled_group_rpass(task_results: Sequence[dict[str, Any]], filter_key: str) -> float | None:
    """Pooled rpass@1 of several tasks' results dicts (lm-eval's ``results[task]``) for one filter.

    Uses the mean-aggregated ``vr`` and ``rtc_valid_correct`` and each task's ``sample_len``:
    Σ rtc_valid_correct·n / Σ vr·n = Σ valid∧correct / Σ valid. None when nothing is valid.
    """
    num = den = 0.0
    for result in task_results:
        n = result.get("sample_len", 0)
        den += result[f"vr,{filter_key}"] * n
        num += result[f"{VALID_CORRECT_KEY},{filter_key}"] * n
    # Counts are products of floats; a zero count can come out as ~1e-17.
    return num / den if den > 1e-9 else None


def _pool_rpass(
    group: Any, task_metrics: dict[str, dict[str, Any]], agg_config: Any, out: dict[str, Any]
) -> None:
    leaves = [t.task_name for t in group.get_all_tasks()]
    present = [task_metrics[n] for n in leaves if n in task_metrics]
    if agg_config.filter_list is None:
        filters = sorted({k.split(",", 1)[1] for r in present for k in r if k.startswith(f"{RPASS_KEY},")})
    else:
        filters = list(agg_config.filter_list)
    for filter_key in filters:
        with_metric = [r for r in present if f"{RPASS_KEY},{filter_key}" in r]
        usable = [
            r for r in with_metric if f"vr,{filter_key}" in r and f"{VALID_CORRECT_KEY},{filter_key}" in r
        ]
        if not with_metric:
            continue
        if len(usable) != len(with_metric):
            # A member that reports rpass@1 without the helper keys cannot be pooled; a
            # doc-weighted mean of ratios would be wrong, so report nothing.
            log.warning(
                "group %r: rpass@1,%s not reported: some members lack vr/%s (not rtc tasks)",
                group.name,
                filter_key,
                VALID_CORRECT_KEY,
            )
            continue
        out[f"{RPASS_KEY},{filter_key}"] = pooled_group_rpass(usable, filter_key)
        out[f"{RPASS_KEY}_stderr,{filter_key}"] = "N/A"
        out.setdefault("sample_count", {})[f"{RPASS_KEY},{filter_key}"] = sum(
            r.get("sample_len", 0) for r in usable
        )


def install_group_pooling() -> None:
    """Make lm-eval groups report ``rpass@1`` pooled instead of a mean of task ratios (idempotent)."""
    from lm_eval.api.group import Group

    original = Group.aggregate
    if getattr(original, "_rtc_pooled", False):
        return

    @functools.wraps(original)
    def aggregate(self: Any, task_metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        configs = list(self.aggregate_metric_list or [])
        ratio_configs = [c for c in configs if c.metric == RPASS_KEY]
        if not ratio_configs:
            return original(self, task_metrics)
        # lm-eval's own code aggregates everything else; it must not see rpass@1, whose
        # size-weighted mean would be wrong (and crashes on a None from an all-invalid task).
        self.aggregate_metric_list = [c for c in configs if c.metric != RPASS_KEY]
        try:
            out = original(self, task_metrics)
        finally:
            self.aggregate_metric_list = configs
        for agg_config in ratio_configs:
            _pool_rpass(self, task_metrics, agg_config, out)
        return out

    aggregate._rtc_pooled = True  # type: ignore[attr-defined]
    Group.aggregate = aggregate  # type: ignore[method-assign]
