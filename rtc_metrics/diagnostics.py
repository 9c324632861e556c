"""Token-budget diagnostics: how long each generation was, whether it used up its budget,
and why a truncated trace was cut.

A generation *hit the budget* when its length in tokens reached ``max_gen_toks`` (minus a
small slack, see :func:`budget_hit`). A truncated generation (trace opened, never closed)
is then one of:

- ``truncated_by_budget``: it ran out of tokens while reasoning, so a larger
  ``max_gen_toks`` would likely let it close;
- ``stopped_inside_trace``: it ended before its budget, so EOS or a stop string fired
  while the trace was open (a stop list, a template, or the model itself).

These are :class:`~rtc_metrics.parsing.Anomaly` values that :func:`classify_budget` adds
to a parse; :func:`~rtc_metrics.parsing.parse_trace` never sets them (it only sees text).

Lengths are counted with the model's tokenizer (``encode(text, add_special_tokens=False)``
on the decoded output). Without one, :func:`count_tokens` falls back to
``ceil(characters / 4)``, a rough average for English BPE vocabularies; records then say
``"tokens_approx": true``, and budget hits are only indicative.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtc_metrics.parsing import Anomaly, ParsedTrace, TraceStatus

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_BUDGET_WARN",
    "BudgetReport",
    "GenerationInfo",
    "budget_hit",
    "budget_report",
    "classify_budget",
    "count_tokens",
    "suggest_max_gen_toks",
]

#: Characters per token of the fallback approximation (no tokenizer available).
CHARS_PER_TOKEN = 4
#: Default share of budget-hitting generations above which a run warns.
DEFAULT_BUDGET_WARN = 0.05
#: Relative slack of :func:`budget_hit`: re-encoding decoded text can merge pieces the model
#: emitted separately ("<th" + "ink>" -> "<think>"), so a generation that stopped at the
#: budget may re-encode a few tokens short of it.
BUDGET_SLACK = 0.02


def count_tokens(text: str, tokenizer: Any = None) -> tuple[int, bool]:
    """``(length in tokens, approximate?)`` of ``text``.

    With a tokenizer (anything with ``encode(text, add_special_tokens=False)``) the count is
    exact for that tokenizer; without one it is ``ceil(len(text) / 4)`` and flagged approximate.
    """
    if tokenizer is not None:
        return len(tokenizer.encode(text, add_special_tokens=False)), False
    return math.ceil(len(text) / CHARS_PER_TOKEN), True


def budget_hit(n_tokens: int, max_gen_toks: int | None) -> bool:
    """True when ``n_tokens`` reached the budget, allowing max(1, 2%) tokens of slack."""
    if not max_gen_toks or max_gen_toks <= 0:
        return False
    slack = max(1, math.ceil(BUDGET_SLACK * max_gen_toks))
    return n_tokens >= max_gen_toks - slack


def classify_budget(trace: ParsedTrace, hit: bool) -> ParsedTrace:
    """``trace`` with ``truncated_by_budget`` or ``stopped_inside_trace`` added when it is truncated."""
    if trace.status is not TraceStatus.TRUNCATED:
        return trace
    cause = Anomaly.TRUNCATED_BY_BUDGET if hit else Anomaly.STOPPED_INSIDE_TRACE
    return dataclasses.replace(trace, anomalies=(*trace.anomalies, cause))


@dataclass(frozen=True)
class GenerationInfo:
    """One generation's structure and budget use, as logged per sample (``rtc_sample``)."""

    #: The parse, with the budget anomaly added for truncated generations.
    trace: ParsedTrace
    #: Length of the whole generation in tokens (what the budget limits).
    gen_tokens: int
    #: Length of the trace text in characters and tokens (0 when missing).
    trace_chars: int
    trace_tokens: int
    #: Whether the token counts come from the ``chars / 4`` approximation.
    tokens_approx: bool
    #: The generation's ``max_gen_toks`` (None when unknown) and whether it was used up.
    max_gen_toks: int | None
    budget_hit: bool

    @classmethod
    def measure(cls, text: str, trace: ParsedTrace, max_gen_toks: int | None, tokenizer: Any = None) -> GenerationInfo:
        """Count ``text`` (the raw generation) and classify its parse ``trace``."""
        gen_tokens, approx = count_tokens(text, tokenizer)
        has_trace = trace.status is not TraceStatus.MISSING
        trace_tokens = count_tokens(trace.reasoning, tokenizer)[0] if has_trace else 0
        hit = budget_hit(gen_tokens, max_gen_toks)
        return cls(
            classify_budget(trace, hit),
            gen_tokens,
            len(trace.reasoning) if has_trace else 0,
            trace_tokens,
            approx,
            max_gen_toks,
            hit,
        )

    def record(self) -> dict[str, Any]:
        """JSON-ready fields: status, anomalies, lengths, budget use and the scored answer."""
        return {
            "status": self.trace.status.value,
            "anomalies": [a.value for a in self.trace.anomalies],
            "prefixed": self.trace.prefixed,
            "trace_chars": self.trace_chars,
            "trace_tokens": self.trace_tokens,
            "gen_tokens": self.gen_tokens,
            "tokens_approx": self.tokens_approx,
            "max_gen_toks": self.max_gen_toks,
            "budget_hit": self.budget_hit,
            "answer": self.trace.answer,
        }


def suggest_max_gen_toks(finished_lengths: Sequence[int], max_gen_toks: int) -> int:
    """A budget for the next run, from the lengths (tokens) of generations that finished.

    Generations that hit the budget would have run longer, by an unknown amount, so the
    suggestion is at least twice the current budget; when finished generations were
    themselves long, 1.25 × their 95th percentile wins. Rounded up to a power of two.
    """
    want = 2 * max_gen_toks
    if finished_lengths:
        ordered = sorted(finished_lengths)
        p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
        want = max(want, math.ceil(1.25 * p95))
    return 1 << max(0, math.ceil(math.log2(max(1, want))))


@dataclass(frozen=True)
class BudgetReport:
    """Budget use over a task's generations, and the warning when too many hit it."""

    #: Generations measured, and those that hit the budget.
    n: int
    n_hit: int
    #: Truncated generations split by cause.
    n_truncated_by_budget: int
    n_stopped_inside_trace: int
    #: The largest ``max_gen_toks`` seen (None when unknown).
    max_gen_toks: int | None
    #: The warning threshold (share of generations).
    threshold: float
    #: Suggested ``max_gen_toks`` when the share of hits exceeds the threshold, else None.
    suggested: int | None
    #: Whether token counts were approximate (no tokenizer).
    approx: bool

    @property
    def rate(self) -> float | None:
        """Share of generations that hit the budget."""
        return self.n_hit / self.n if self.n else None

    @property
    def warn(self) -> bool:
        return self.suggested is not None

    def message(self, task: str) -> str:
        """One line for the log (a warning when :attr:`warn`)."""
        rate = 100 * (self.rate or 0.0)
        text = (
            f"{task}: {self.n_hit}/{self.n} generations ({rate:.1f}%) used up max_gen_toks={self.max_gen_toks}; "
            f"truncated traces: {self.n_truncated_by_budget} by the budget, {self.n_stopped_inside_trace} "
            "stopped inside the trace (EOS or a stop string)"
        )
        if self.warn:
            text += (
                f". Above {100 * self.threshold:g}%: rerun with --gen_kwargs max_gen_toks={self.suggested} "
                "(from the lengths of finished generations; the hf backend needs it below max_length)"
            )
        if self.approx:
            text += " [token counts approximate: no tokenizer, chars/4]"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "budget_hit": self.rate,
            "n_budget_hit": self.n_hit,
            "truncated_by_budget": self.n_truncated_by_budget,
            "stopped_inside_trace": self.n_stopped_inside_trace,
            "max_gen_toks": self.max_gen_toks,
            "threshold": self.threshold,
            "suggested_max_gen_toks": self.suggested,
            "tokens_approx": self.approx,
        }


def budget_report(infos: Sequence[GenerationInfo], threshold: float = DEFAULT_BUDGET_WARN) -> BudgetReport:
    """Summarize generations' budget use; suggests a budget when hits exceed ``threshold``."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"the budget warning threshold must be a share in [0, 1], got {threshold!r}")
    n_hit = sum(i.budget_hit for i in infos)
    budgets = [i.max_gen_toks for i in infos if i.max_gen_toks]
    budget = max(budgets) if budgets else None
    suggested = None
    if infos and budget and n_hit / len(infos) > threshold:
        suggested = suggest_max_gen_toks([i.gen_tokens for i in infos if not i.budget_hit], budget)
    return BudgetReport(
        n=len(infos),
        n_hit=n_hit,
        n_truncated_by_budget=sum(Anomaly.TRUNCATED_BY_BUDGET in i.trace.anomalies for i in infos),
        n_stopped_inside_trace=sum(Anomaly.STOPPED_INSIDE_TRACE in i.trace.anomalies for i in infos),
        max_gen_toks=budget,
        threshold=threshold,
        suggested=suggested,
        approx=any(i.tokens_approx for i in infos),
    )
