"""Why did accuracy change? Split the change between two runs into structure and skill.

Every scored generation falls in one class c (valid, empty, truncated, missing), so

    acc = Σ_c P(c) · acc|c

with P(c) the share of scored generations in class c and acc|c the accuracy among them.
Between a run A (before) and a run B (after), with ΔP_c = P_B(c) − P_A(c) and
Δacc|c = acc_B|c − acc_A|c, the change splits exactly (the two-factor Shapley split, the
same whichever run is taken first):

    Δacc = Σ_c ΔP_c · (acc_A|c + acc_B|c)/2      structural: the classes' shares moved
         + Σ_c Δacc|c · (P_A(c) + P_B(c))/2      conditional: accuracy within a class moved

and the two parts add up to Δacc (up to float rounding, ~1e-16).

Empty classes. acc|c is undefined where a run has no scored generation in class c. Its
value is then taken from the other run, so that class contributes no conditional change:
all of its term P_B(c)·acc_B|c − P_A(c)·acc_A|c is structural (a class that appears or
disappears is a structural change). A class empty in both runs contributes 0.

Intervals: a parametric bootstrap, each run resampled independently (class counts
multinomial, correct answers binomial within each class), percentile bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from rtc_metrics.parsing import TraceStatus
from rtc_metrics.stats import TraceSummary

__all__ = ["ClassCounts", "Decomposition", "decompose"]

CLASSES = tuple(s.value for s in TraceStatus)


@dataclass(frozen=True)
class ClassCounts:
    """Scored generations and correct answers per class, for one run."""

    #: status value -> scored generations in that class (may be fractional from a results file).
    scored: Mapping[str, float]
    #: status value -> sum of correctness among them.
    correct: Mapping[str, float]

    def __post_init__(self) -> None:
        for c in CLASSES:
            s, k = float(self.scored.get(c, 0.0)), float(self.correct.get(c, 0.0))
            if s < 0 or k < 0 or k > s + 1e-9:
                raise ValueError(f"class {c!r}: {k} correct out of {s} scored is not a valid count")

    @classmethod
    def from_summary(cls, summary: TraceSummary) -> ClassCounts:
        """The per-class counters of a :class:`TraceSummary`."""
        return cls(
            {c: float(summary.class_scored[c]) for c in CLASSES},
            {c: float(summary.class_correct[c]) for c in CLASSES},
        )

    @property
    def n(self) -> float:
        """Scored generations."""
        return math.fsum(self.scored.get(c, 0.0) for c in CLASSES)

    def share(self, c: str) -> float:
        """P(c) among scored generations."""
        return self.scored.get(c, 0.0) / self.n if self.n else 0.0

    def accuracy(self, c: str | None = None) -> float | None:
        """acc|c, or the overall accuracy with ``c`` None; None when undefined."""
        if c is None:
            total = math.fsum(self.correct.get(k, 0.0) for k in CLASSES)
            return total / self.n if self.n else None
        s = self.scored.get(c, 0.0)
        return self.correct.get(c, 0.0) / s if s else None


@dataclass(frozen=True)
class Decomposition:
    """Δacc = structural + conditional, in accuracy units (fractions, not points)."""

    acc_before: float
    acc_after: float
    #: acc_after − acc_before.
    total: float
    structural: float
    conditional: float
    #: status value -> (structural, conditional) contribution of that class.
    by_class: dict[str, tuple[float, float]]
    #: VR (share of scored generations with a valid trace) in each run.
    vr_before: float
    vr_after: float
    #: 95% (or the asked confidence) bootstrap intervals; None when not computed.
    total_ci: tuple[float, float] | None = None
    structural_ci: tuple[float, float] | None = None
    conditional_ci: tuple[float, float] | None = None
    #: Per class, the interval of its conditional part.
    conditional_by_class_ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (fractions)."""
        return {
            "acc_before": self.acc_before,
            "acc_after": self.acc_after,
            "total": self.total,
            "structural": self.structural,
            "conditional": self.conditional,
            "by_class": {c: {"structural": s, "conditional": k} for c, (s, k) in self.by_class.items()},
            "vr_before": self.vr_before,
            "vr_after": self.vr_after,
            "total_ci": _list(self.total_ci),
            "structural_ci": _list(self.structural_ci),
            "conditional_ci": _list(self.conditional_ci),
        }

    def sentence(self, with_intervals: bool = True) -> str:
        """E.g. "−18.2 pts: −15.9 from fewer valid traces (VR 80.0% → 60.0%), −2.3 from lower
        accuracy given a valid trace". The shown parts add up to the shown total."""
        valid_cond = self.by_class[TraceStatus.VALID.value][1]
        other_cond = self.conditional - valid_cond
        total, (structural, valid_part, other_part) = _round_summing(
            self.total, [self.structural, valid_cond, other_cond]
        )
        if self.vr_after < self.vr_before:
            shift = "fewer valid traces"
        elif self.vr_after > self.vr_before:
            shift = "more valid traces"
        else:
            shift = "the shift between other classes"
        parts = [
            f"{_pts(structural)} from {shift} (VR {100 * self.vr_before:.1f}% → {100 * self.vr_after:.1f}%)"
            + _ci(self.structural_ci, with_intervals),
            f"{_pts(valid_part)} from {'lower' if valid_cond < 0 else 'higher'} accuracy given a valid trace"
            + _ci(self.conditional_by_class_ci.get(TraceStatus.VALID.value), with_intervals),
        ]
        if abs(other_part) >= 0.05 or abs(other_cond) >= 0.0005:
            parts.append(f"{_pts(other_part)} from accuracy given an invalid trace (empty/truncated/missing)")
        return f"{_pts(total)} pts{_ci(self.total_ci, with_intervals)}: " + ", ".join(parts)


def _list(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [ci[0], ci[1]]


def _pts(value: float) -> str:
    """Points with a true minus sign; -0.0 shows as +0.0."""
    value = 0.0 if value == 0 else value
    return f"{value:+.1f}".replace("-", "−")


def _ci(ci: tuple[float, float] | None, show: bool) -> str:
    if not show or ci is None:
        return ""
    return f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]".replace("-", "−")


def _round_summing(total: float, parts: list[float]) -> tuple[float, list[float]]:
    """Points to one decimal, the parts adjusted (largest remainder) to sum to the rounded total."""
    tenths_total = round(1000 * total)
    tenths = [math.floor(1000 * p) for p in parts]
    remainders = sorted(range(len(parts)), key=lambda i: 1000 * parts[i] - tenths[i], reverse=True)
    short = tenths_total - sum(tenths)
    for k in range(abs(short)):
        i = remainders[k % len(parts)] if short > 0 else remainders[::-1][k % len(parts)]
        tenths[i] += 1 if short > 0 else -1
    return tenths_total / 10, [t / 10 for t in tenths]


def _parts(
    shares_a: list[float], acc_a: list[float | None], shares_b: list[float], acc_b: list[float | None]
) -> dict[str, tuple[float, float]]:
    out = {}
    for c, pa, aa, pb, ab in zip(CLASSES, shares_a, acc_a, shares_b, acc_b, strict=True):
        if aa is None and ab is None:
            aa = ab = 0.0
        elif aa is None:
            aa = ab
        elif ab is None:
            ab = aa
        out[c] = ((pb - pa) * (aa + ab) / 2, (ab - aa) * (pa + pb) / 2)  # type: ignore[operator]
    return out


def decompose(
    before: ClassCounts | TraceSummary,
    after: ClassCounts | TraceSummary,
    *,
    confidence: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
) -> Decomposition:
    """Split ``acc(after) − acc(before)`` into structural and conditional parts (module notes).

    ``draws`` bootstrap resamples give the intervals (0: no intervals).
    """
    a = before if isinstance(before, ClassCounts) else ClassCounts.from_summary(before)
    b = after if isinstance(after, ClassCounts) else ClassCounts.from_summary(after)
    if not a.n or not b.n:
        raise ValueError("both runs need scored generations (correctness) to decompose the accuracy change")
    by_class = _parts(
        [a.share(c) for c in CLASSES],
        [a.accuracy(c) for c in CLASSES],
        [b.share(c) for c in CLASSES],
        [b.accuracy(c) for c in CLASSES],
    )
    structural = math.fsum(s for s, _ in by_class.values())
    conditional = math.fsum(k for _, k in by_class.values())
    result = Decomposition(
        acc_before=a.accuracy() or 0.0,
        acc_after=b.accuracy() or 0.0,
        total=structural + conditional,
        structural=structural,
        conditional=conditional,
        by_class=by_class,
        vr_before=a.share(TraceStatus.VALID.value),
        vr_after=b.share(TraceStatus.VALID.value),
    )
    if draws <= 0:
        return result
    return _with_intervals(result, a, b, confidence, draws, seed)


def _resample(counts: ClassCounts, draws: int, rng: object) -> tuple[object, object]:
    import numpy as np

    n = max(1, round(counts.n))
    p = np.array([counts.share(c) for c in CLASSES])
    scored = rng.multinomial(n, p / p.sum(), size=draws)  # type: ignore[attr-defined]
    acc = np.array([counts.accuracy(c) or 0.0 for c in CLASSES])
    correct = rng.binomial(scored, np.clip(acc, 0.0, 1.0))  # type: ignore[attr-defined]
    return scored, correct


def _with_intervals(
    result: Decomposition, a: ClassCounts, b: ClassCounts, confidence: float, draws: int, seed: int
) -> Decomposition:
    import numpy as np

    rng = np.random.default_rng(seed)
    sa, ka = _resample(a, draws, rng)
    sb, kb = _resample(b, draws, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_a, acc_b = ka / sa, kb / sb  # type: ignore[operator]
    # The empty-class rule, vectorized: undefined takes the other run's value, both undefined 0.
    acc_a2 = np.where(np.isnan(acc_a), acc_b, acc_a)
    acc_b2 = np.where(np.isnan(acc_b), acc_a, acc_b)
    acc_a2, acc_b2 = np.nan_to_num(acc_a2), np.nan_to_num(acc_b2)
    pa = sa / sa.sum(axis=1, keepdims=True)  # type: ignore[attr-defined]
    pb = sb / sb.sum(axis=1, keepdims=True)  # type: ignore[attr-defined]
    structural = (pb - pa) * (acc_a2 + acc_b2) / 2
    conditional = (acc_b2 - acc_a2) * (pa + pb) / 2
    lo, hi = (1 - confidence) / 2, (1 + confidence) / 2

    def bounds(x: object) -> tuple[float, float]:
        q = np.quantile(x, [lo, hi])
        return float(q[0]), float(q[1])

    return Decomposition(
        **{
            **result.__dict__,
            "total_ci": bounds((structural + conditional).sum(axis=1)),
            "structural_ci": bounds(structural.sum(axis=1)),
            "conditional_ci": bounds(conditional.sum(axis=1)),
            "conditional_by_class_ci": {c: bounds(conditional[:, i]) for i, c in enumerate(CLASSES)},
        }
    )
