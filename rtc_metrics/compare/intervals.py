"""95% intervals for rates and for the VR drop behind the collapse flag.

Rates reported by lm-eval are means of 0/1 values over ``n`` documents, so
``value × n`` is a whole count. From that count we give the Wilson score interval
(good at small n and near 0 or 1, where value ± 1.96·stderr leaves [0, 1] or collapses
to a point). A value that is not a whole count over ``n`` (a non-binary metric, or
several samples per document) falls back to value ± z·stderr when lm-eval reported a
stderr, else it gets no interval.

The VR drop against a reference row uses Newcombe's hybrid score interval for a
difference of two independent proportions (Newcombe 1998, method 10), built from the
two Wilson intervals. A row is flagged as collapsed when the whole interval of
``VR_reference - VR_row`` lies above 0.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from rtc_metrics.compare.rows import MISSING, Estimate, clean
from rtc_metrics.stats import wilson_interval

__all__ = ["count_estimate", "difference_interval", "rate_estimate", "whole_count"]

#: How far ``value × n`` may be from a whole number and still count as one (float noise).
_COUNT_TOLERANCE = 1e-6


def whole_count(value: float, n: int) -> int | None:
    """``round(value × n)`` when ``value`` is a proportion of ``n`` items, else None."""
    k = value * n
    return round(k) if abs(k - round(k)) <= _COUNT_TOLERANCE else None


def count_estimate(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Rate ``successes / trials`` with its Wilson interval; missing when trials is 0."""
    if trials <= 0:
        return Estimate(None, successes=successes, trials=trials)
    low, high = wilson_interval(successes, trials, confidence)  # type: ignore[misc]
    # The closed form leaves float noise (1e-17) where the bound is exactly 0 or 1.
    low = 0.0 if successes == 0 else low
    high = 1.0 if successes == trials else high
    return Estimate(successes / trials, low, high, successes, trials, "wilson")


def rate_estimate(value: object, n: int | None, stderr: object = None, confidence: float = 0.95) -> Estimate:
    """A reported rate over ``n`` documents, with an interval (see the module notes)."""
    v = clean(value)
    if v is None:
        return MISSING
    if n:
        k = whole_count(v, n)
        if k is not None:
            return count_estimate(k, n, confidence)
    se = clean(stderr)
    if se is not None:
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * se
        return Estimate(v, max(0.0, v - half), min(1.0, v + half), method="normal")
    return Estimate(v)


def difference_interval(a: Estimate, b: Estimate) -> tuple[float, float, float] | None:
    """``(a - b, low, high)`` by Newcombe's hybrid score method; None without intervals."""
    if a.value is None or b.value is None or a.ci is None or b.ci is None:
        return None
    (l1, u1), (l2, u2) = a.ci, b.ci
    p1, p2 = a.value, b.value
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high
