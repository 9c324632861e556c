"""Structural statistics over many parsed generations, with closed-form 95% intervals.

A :class:`TraceSummary` is a set of counters, so it can be filled one generation at a
time (flat memory on huge files) and pooled across tasks by adding counters.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from statistics import NormalDist
from typing import Any

from rtc_metrics.parsing import ParsedTrace, TraceStatus

__all__ = ["CLASS_ACC_KEYS", "TraceSummary", "macro_average", "pooled", "summarize", "wilson_interval"]

#: Keys of :meth:`TraceSummary.to_dict` that carry a 95% interval.
RATE_KEYS = (
    "vr",
    "er",
    "tr",
    "mr",
    "ir",
    "answer_rate",
    "pass@1",
    "rpass@1",
    "acc_invalid",
    "acc_valid",
    "acc_empty",
    "acc_truncated",
    "acc_missing",
    "budget_hit",
)
#: Accuracy within each structural class: key -> status.
CLASS_ACC_KEYS = {f"acc_{s.value}": s for s in TraceStatus}
MEAN_KEYS = ("mean_trace_chars", "mean_trace_tokens")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None when ``n`` is 0."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


@dataclass
class _Moments:
    """Streaming count, sum and sum of squares, for a mean and its normal interval."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.total_sq += x * x

    def merge(self, other: _Moments) -> None:
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def interval(self, confidence: float) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        mean = self.total / self.n
        var = max(0.0, (self.total_sq - self.n * mean * mean) / (self.n - 1))
        half = _z(confidence) * math.sqrt(var / self.n)
        return (mean - half, mean + half)


@dataclass
class TraceSummary:
    """Counters over generations; rates are properties derived from them.

    Correctness is optional per generation: generations without a value count toward the
    structural rates but not toward pass@1 / Rpass@1.
    """

    #: Generations seen.
    n: int = 0
    #: Generations per status.
    n_valid: int = 0
    n_empty: int = 0
    n_truncated: int = 0
    n_missing: int = 0
    #: Generations whose answer segment is not blank.
    n_answered: int = 0
    #: Generations with a correctness value, and the sum of those values.
    n_scored: int = 0
    n_correct: float = 0.0
    #: The same, restricted to valid-trace generations.
    n_valid_scored: int = 0
    n_valid_correct: float = 0.0
    #: Trace length in characters over generations that have a trace (not missing).
    trace_chars: _Moments = field(default_factory=_Moments)
    #: Trace length in tokens, when a tokenizer was given.
    trace_tokens: _Moments = field(default_factory=_Moments)
    #: How many generations showed each anomaly.
    anomalies: Counter = field(default_factory=Counter)
    #: Scored generations per status value, and the sum of their correctness (for the
    #: accuracy within each class and the accuracy-change decomposition).
    class_scored: Counter = field(default_factory=Counter)
    class_correct: Counter = field(default_factory=Counter)
    #: Generations whose budget use is known, and those that used up ``max_gen_toks``.
    n_budget_known: int = 0
    n_budget_hit: int = 0

    def add(
        self,
        trace: ParsedTrace,
        correct: float | bool | None = None,
        n_tokens: int | None = None,
        budget_hit: bool | None = None,
    ) -> None:
        """Count one generation; ``correct`` is 0/1 (or a fraction), None when unscored.

        ``n_tokens`` is the trace length in tokens; ``budget_hit`` whether the generation
        used up its token budget (None: unknown).
        """
        self.n += 1
        if budget_hit is not None:
            self.n_budget_known += 1
            self.n_budget_hit += bool(budget_hit)
        status = trace.status
        if status is TraceStatus.VALID:
            self.n_valid += 1
        elif status is TraceStatus.EMPTY:
            self.n_empty += 1
        elif status is TraceStatus.TRUNCATED:
            self.n_truncated += 1
        else:
            self.n_missing += 1
        if trace.has_answer:
            self.n_answered += 1
        if status is not TraceStatus.MISSING:
            self.trace_chars.add(len(trace.reasoning))
            if n_tokens is not None:
                self.trace_tokens.add(n_tokens)
        self.anomalies.update(a.value for a in trace.anomalies)
        if correct is None:
            return
        value = float(correct)
        if math.isnan(value):
            return
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"correctness must be in [0, 1] (or bool), got {correct!r}")
        self.n_scored += 1
        self.n_correct += value
        self.class_scored[status.value] += 1
        self.class_correct[status.value] += value
        if status is TraceStatus.VALID:
            self.n_valid_scored += 1
            self.n_valid_correct += value

    def merge(self, other: TraceSummary) -> None:
        """Add ``other``'s counters to this summary (pooling)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, _Moments):
                mine.merge(theirs)
            elif isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    # --- rates ------------------------------------------------------------------------
    @property
    def vr(self) -> float | None:
        """Valid rate."""
        return _ratio(self.n_valid, self.n)

    @property
    def er(self) -> float | None:
        """Empty rate."""
        return _ratio(self.n_empty, self.n)

    @property
    def tr(self) -> float | None:
        """Truncated rate."""
        return _ratio(self.n_truncated, self.n)

    @property
    def mr(self) -> float | None:
        """Missing rate."""
        return _ratio(self.n_missing, self.n)

    @property
    def ir(self) -> float | None:
        """Invalid rate: 1 - VR."""
        return _ratio(self.n - self.n_valid, self.n)

    @property
    def answer_rate(self) -> float | None:
        """Share of generations with a non-blank answer segment."""
        return _ratio(self.n_answered, self.n)

    @property
    def pass_at_1(self) -> float | None:
        """Accuracy over scored generations."""
        return _ratio(self.n_correct, self.n_scored)

    @property
    def rpass_at_1(self) -> float | None:
        """Accuracy among valid-trace generations (None when none is valid)."""
        return _ratio(self.n_valid_correct, self.n_valid_scored)

    @property
    def acc_invalid(self) -> float | None:
        """Accuracy among generations without a valid trace."""
        return _ratio(self.n_correct - self.n_valid_correct, self.n_scored - self.n_valid_scored)

    def class_accuracy(self, status: TraceStatus | str) -> float | None:
        """Accuracy among scored generations of one class (None when the class is empty)."""
        key = TraceStatus(status).value
        return _ratio(self.class_correct[key], self.class_scored[key])

    @property
    def budget_hit(self) -> float | None:
        """Share of generations (with known budget use) that used up ``max_gen_toks``."""
        return _ratio(self.n_budget_hit, self.n_budget_known)

    @property
    def mean_trace_chars(self) -> float | None:
        """Mean trace length (characters) over generations that have a trace."""
        return self.trace_chars.mean

    @property
    def mean_trace_tokens(self) -> float | None:
        """Mean trace length (tokens), when token counts were given."""
        return self.trace_tokens.mean

    def _fraction(self, key: str) -> tuple[float, float]:
        """(successes, trials) behind a rate key."""
        invalid_scored = self.n_scored - self.n_valid_scored
        return {
            "vr": (self.n_valid, self.n),
            "er": (self.n_empty, self.n),
            "tr": (self.n_truncated, self.n),
            "mr": (self.n_missing, self.n),
            "ir": (self.n - self.n_valid, self.n),
            "answer_rate": (self.n_answered, self.n),
            "pass@1": (self.n_correct, self.n_scored),
            "rpass@1": (self.n_valid_correct, self.n_valid_scored),
            "acc_invalid": (self.n_correct - self.n_valid_correct, invalid_scored),
            "budget_hit": (self.n_budget_hit, self.n_budget_known),
            **{
                k: (self.class_correct[s.value], self.class_scored[s.value])
                for k, s in CLASS_ACC_KEYS.items()
            },
        }[key]

    def interval(self, key: str, confidence: float = 0.95) -> tuple[float, float] | None:
        """Closed-form interval for ``key``: Wilson for rates, normal for mean lengths."""
        if key in RATE_KEYS:
            return wilson_interval(*self._fraction(key), confidence=confidence)
        if key == "mean_trace_chars":
            return self.trace_chars.interval(confidence)
        if key == "mean_trace_tokens":
            return self.trace_tokens.interval(confidence)
        raise KeyError(f"no interval for {key!r}; known: {', '.join(RATE_KEYS + MEAN_KEYS)}")

    def to_dict(self, confidence: float = 0.95) -> dict[str, Any]:
        """Metrics as a JSON-ready dict: ``vr``, ``er``, ``tr``, ``mr``, ``rpass@1``, ...

        Each metric ``k`` has ``k + "_ci"`` = [low, high] or None. Undefined metrics are None.
        """
        values = {
            "vr": self.vr,
            "er": self.er,
            "tr": self.tr,
            "mr": self.mr,
            "ir": self.ir,
            "answer_rate": self.answer_rate,
            "pass@1": self.pass_at_1,
            "rpass@1": self.rpass_at_1,
            "acc_invalid": self.acc_invalid,
            **{k: self.class_accuracy(s) for k, s in CLASS_ACC_KEYS.items()},
            "budget_hit": self.budget_hit,
            "mean_trace_chars": self.mean_trace_chars,
            "mean_trace_tokens": self.mean_trace_tokens,
        }
        out: dict[str, Any] = {"n": self.n}
        for key, value in values.items():
            out[key] = value
            ci = self.interval(key, confidence) if value is not None else None
            out[f"{key}_ci"] = list(ci) if ci else None
        out["counts"] = {
            "valid": self.n_valid,
            "empty": self.n_empty,
            "truncated": self.n_truncated,
            "missing": self.n_missing,
            "answered": self.n_answered,
            "scored": self.n_scored,
            "correct": self.n_correct,
            "valid_scored": self.n_valid_scored,
            "valid_correct": self.n_valid_correct,
            "class_scored": {s.value: self.class_scored[s.value] for s in TraceStatus},
            "class_correct": {s.value: self.class_correct[s.value] for s in TraceStatus},
            "budget_known": self.n_budget_known,
            "budget_hit": self.n_budget_hit,
        }
        out["anomalies"] = dict(sorted(self.anomalies.items()))
        return out


def summarize(
    traces: Iterable[ParsedTrace],
    correct: Sequence[float | bool | None] | None = None,
    *,
    tokenizer: Any = None,
) -> TraceSummary:
    """Summarize parsed generations.

    ``correct`` (optional) gives each generation's correctness (bool, 0/1 or a fraction;
    None or NaN for unscored), aligned with ``traces``. With a ``tokenizer`` (anything
    with ``encode(text, add_special_tokens=False)``) trace lengths are also counted in
    tokens.
    """
    summary = TraceSummary()
    traces = list(traces) if correct is not None else traces
    if correct is not None and len(correct) != len(traces):  # type: ignore[arg-type]
        raise ValueError(
            f"correct has {len(correct)} values but there are {len(traces)} traces; "  # type: ignore[arg-type]
            "pass one correctness value (or None) per generation"
        )
    for i, trace in enumerate(traces):
        n_tokens = None
        if tokenizer is not None and trace.status is not TraceStatus.MISSING:
            n_tokens = len(tokenizer.encode(trace.reasoning, add_special_tokens=False))
        summary.add(trace, None if correct is None else correct[i], n_tokens)
    return summary


def pooled(summaries: Iterable[TraceSummary]) -> TraceSummary:
    """Pool several tasks: counters are added, so pooled Rpass@1 = Σ valid∧correct / Σ valid."""
    total = TraceSummary()
    for s in summaries:
        total.merge(s)
    return total


def macro_average(summaries: Sequence[TraceSummary], confidence: float = 0.95) -> dict[str, Any]:
    """Unweighted mean over tasks of each metric (tasks where it is undefined are skipped).

    Intervals combine the per-task normal variances: var = Σ p_i(1-p_i)/n_i / k².
    """
    out: dict[str, Any] = {"n_tasks": len(summaries), "n": sum(s.n for s in summaries)}
    z = _z(confidence)
    for key in RATE_KEYS:
        parts = []
        for s in summaries:
            num, den = s._fraction(key)
            if den:
                parts.append((num / den, den))
        if not parts:
            out[key], out[f"{key}_ci"] = None, None
            continue
        k = len(parts)
        mean = sum(p for p, _ in parts) / k
        half = z * math.sqrt(sum(p * (1 - p) / den for p, den in parts)) / k
        out[key] = mean
        out[f"{key}_ci"] = [max(0.0, mean - half), min(1.0, mean + half)]
    return out
