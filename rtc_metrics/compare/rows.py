"""The unit of comparison: one row per (model, training step, task), with intervals."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtc_metrics.decompose import ClassCounts, Decomposition

__all__ = ["LABELS", "METRICS", "STRATEGIES", "Collapse", "Estimate", "Row", "split_checkpoint"]

#: Metric keys of a row, in table order; "pass@1" is the task's own answer metric.
METRICS = ("pass@1", "vr", "er", "tr", "mr", "rpass@1")
#: How each metric is headed in tables and figures.
LABELS = {"pass@1": "pass@1", "vr": "VR", "er": "ER", "tr": "TR", "mr": "MR", "rpass@1": "Rpass@1"}
#: The SFT loss-masking strategies, in the study's order (for figures and labels).
STRATEGIES = ("bare", "empty", "mask", "respond")

# `.../checkpoint-150`, `.../step-150`, `.../step150`, DeepSpeed's `global_step150`.
_CHECKPOINT = re.compile(r"^(?:checkpoint|global_step|step)[-_]?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Estimate:
    """One metric value with its 95% interval and, when known, the counts behind it."""

    #: The value in [0, 1]; None when missing from the input or undefined (NaN).
    value: float | None
    #: Interval bounds; None when no interval can be given.
    low: float | None = None
    high: float | None = None
    #: Successes and trials behind a rate (e.g. valid traces and generations).
    successes: int | None = None
    trials: int | None = None
    #: "wilson" (from counts), "normal" (value ± z·stderr reported by lm-eval) or None.
    method: str | None = None

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)


MISSING = Estimate(None)


@dataclass(frozen=True)
class Collapse:
    """How a row's VR compares with the reference row of the same task."""

    #: Label of the reference row, e.g. "base" or "run@0".
    reference: str
    #: True for the reference row itself.
    is_reference: bool = False
    #: Reference VR minus this row's VR (positive = fewer valid traces), with a 95%
    #: Newcombe interval; None when counts are missing.
    drop: float | None = None
    drop_low: float | None = None
    drop_high: float | None = None

    @property
    def flagged(self) -> bool | None:
        """True when the whole drop interval lies above 0; None when it cannot be told."""
        if self.is_reference:
            return False
        return None if self.drop_low is None else self.drop_low > 0


@dataclass
class Row:
    """One model (or checkpoint) on one task."""

    #: Display label of the model (paths shortened, checkpoint suffix removed).
    model: str
    #: Training step for checkpoints and monitor curves; None otherwise.
    step: int | None
    task: str
    #: One Estimate per key of METRICS.
    metrics: dict[str, Estimate]
    #: Generations (documents) behind the rates; None when the input does not say.
    n: int | None
    #: Where the row came from: a file path (":line" for curve lines).
    source: str
    #: "results" (lm-eval results JSON), "samples" (recounted samples JSONL) or "curve".
    kind: str
    #: When the run happened (POSIX seconds); picks the latest of duplicated runs.
    date: float | None
    #: The model name as the input records it (before shortening).
    model_name: str
    #: The lm-eval metric shown as pass@1, e.g. "exact_match,strict-match".
    answer_metric: str | None = None
    #: SFT strategy (bare/empty/mask/respond) when the input or the model name says.
    strategy: str | None = None
    #: Set by the leaderboard when a reference row is chosen.
    collapse: Collapse | None = None
    #: Scored generations and correct answers per structural class (for the accuracy-change
    #: decomposition); None when the input lacks them.
    classes: ClassCounts | None = None
    #: The accuracy change against the reference row, split (set by the leaderboard).
    decomposition: Decomposition | None = None
    #: Load order, to break date ties (later input wins).
    order: int = field(default=0, compare=False)

    @property
    def label(self) -> str:
        """ "model" or "model@step"."""
        return self.model if self.step is None else f"{self.model}@{self.step}"

    def value(self, key: str) -> float | None:
        return self.metrics.get(key, MISSING).value


def split_checkpoint(name: str) -> tuple[str, int | None]:
    """("/runs/mask", 150) for "/runs/mask/checkpoint-150"; (name, None) otherwise."""
    stripped = name.rstrip("/\\")
    head, _sep, last = stripped.replace("\\", "/").rpartition("/")
    m = _CHECKPOINT.match(last)
    if m and head:
        return head, int(m.group(1))
    return name, None


def is_number(value: object) -> bool:
    """A finite or NaN float/int, not a bool (lm-eval writes NaN for undefined ratios)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def clean(value: object) -> float | None:
    """A metric value as float, None for NaN/None/non-numbers."""
    if not is_number(value) or math.isnan(value) or math.isinf(value):  # type: ignore[arg-type]
        return None
    return float(value)  # type: ignore[arg-type]
