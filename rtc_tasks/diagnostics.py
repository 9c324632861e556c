"""Budget diagnostics and per-sample structure inside an lm-eval run (used by RTCTask).

Per document, :class:`TaskDiagnostics` adds these keys to ``process_results``:

``budget_hit``            share of the doc's generations that used up ``max_gen_toks``
                          (``mean``-aggregated: the run's share, with lm-eval's stderr)
``rtc_sample``            a dict describing the doc's first generation (status, anomalies,
                          trace length in characters and tokens, tokens of the whole
                          generation, budget hit, the answer segment the task scored) plus
                          ``repeats`` (one such dict per generation) when there are several.
                          lm-eval writes every per-doc metric as a top-level key of the
                          ``--log_samples`` line, so the line carries it. Its aggregate in
                          the results is null; the aggregation is where the budget warning
                          is issued, once per run of the task.
``rtc_empty_correct``,    ``share of the doc's generations in that class × correct``, like
``rtc_truncated_correct``, ``rtc_valid_correct``; ``mean``-aggregated, so a results file alone
``rtc_missing_correct``   gives the accuracy within each class (value / rate) for the
                          accuracy-change decomposition of ``rtc compare``.

Metadata keys (``--metadata``):

``rtc_budget_warn``       share of budget hits above which the run warns (default 0.05)
``tokenizer``/``pretrained`` (from ``--model_args``) name the tokenizer that counts
                          tokens (else the tokenizer of a live ``rtc-hf`` backend); without
                          one the count is ``ceil(chars / 4)`` (flagged ``tokens_approx``
                          in each record).

The report (``rtc_diagnostics.as_dict``) is also written into the task's metadata as
``rtc_budget``, so the results file's ``configs`` section keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lm_eval.api.metrics import mean

from rtc_metrics.diagnostics import DEFAULT_BUDGET_WARN, GenerationInfo, budget_report
from rtc_metrics.parsing import ParsedTrace, TraceStatus
from rtc_tasks.settings import _SPECIAL_TOKEN_BACKENDS, RTCSettingsError, _tokenizer_for

__all__ = ["BACKEND_DEFAULT_MAX_GEN_TOKS", "BUDGET_KEY", "CLASS_CORRECT_KEYS", "SAMPLE_KEY", "TaskDiagnostics"]

log = logging.getLogger(__name__)

#: Per-doc share of generations that used up the budget.
BUDGET_KEY = "budget_hit"
#: Per-doc structure record, logged with --log_samples.
SAMPLE_KEY = "rtc_sample"
#: Per-doc class share × correctness, per class (the valid one predates this module).
CLASS_CORRECT_KEYS = {status: f"rtc_{status.value}_correct" for status in TraceStatus}
#: lm-eval's backends generate this many tokens when a request names no max_gen_toks.
BACKEND_DEFAULT_MAX_GEN_TOKS = 256

_UNSET = object()


def _threshold(metadata: dict[str, Any], task_name: str) -> float:
    value = metadata.get("rtc_budget_warn", DEFAULT_BUDGET_WARN)
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = -1.0
    if not 0 <= threshold <= 1:
        raise RTCSettingsError(f"{task_name}: rtc_budget_warn={value!r} must be a share in [0, 1] (e.g. 0.05 for 5%)")
    return threshold


class TaskDiagnostics:
    """Measures every generation of one task and turns it into per-doc metrics."""

    def __init__(self, metadata: dict[str, Any], task_name: str) -> None:
        self.metadata = metadata
        self.task_name = task_name
        self.threshold = _threshold(metadata, task_name)
        self._tokenizer: Any = _UNSET
        #: doc_id -> one GenerationInfo per generation (filled by :meth:`measure`).
        self.infos: dict[int, tuple[GenerationInfo, ...]] = {}
        self._reported = False

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loaded once, cached per name), or None."""
        if self._tokenizer is _UNSET:
            self._tokenizer = _tokenizer_for(self.metadata)
            live = [getattr(m, "tokenizer", None) for m in list(_SPECIAL_TOKEN_BACKENDS)]
            if self._tokenizer is None and len(live) == 1:
                # Python runs with their own TaskManager carry no pretrained= in the
                # metadata; a live rtc-hf backend still knows the model's tokenizer.
                self._tokenizer = live[0]
            if self._tokenizer is None:
                log.info("%s: no tokenizer; token counts are approximate (chars/4)", self.task_name)
        return self._tokenizer

    def register(self, task: Any) -> None:
        """Add this module's metrics to ``task``'s aggregations (also under --predict_only)."""
        task._aggregation_list[BUDGET_KEY] = mean
        task._higher_is_better[BUDGET_KEY] = False
        task._aggregation_list[SAMPLE_KEY] = self.aggregate_samples
        task._higher_is_better[SAMPLE_KEY] = None
        for status, key in CLASS_CORRECT_KEYS.items():
            if status is not TraceStatus.VALID:  # registered by RTCTask itself
                task._aggregation_list[key] = mean
                task._higher_is_better[key] = True

    def measure(
        self,
        instances: Sequence[Any],
        raw: Sequence[Sequence[Any]],
        structure: dict[int, tuple[ParsedTrace, ...]],
    ) -> dict[int, tuple[ParsedTrace, ...]]:
        """Count every instance's raw generations (``raw[i]`` for ``instances[i]``; the
        budget from its gen_kwargs ``inst.args[1]``).

        ``structure`` maps doc_id to the parses of its generations; returns the same with
        ``truncated_by_budget``/``stopped_inside_trace`` added to truncated parses.
        """
        self.infos = {}
        self._reported = False
        for inst, texts in zip(instances, raw, strict=True):
            gen_kwargs = inst.args[1] if len(inst.args) > 1 else None
            budget = gen_kwargs.get("max_gen_toks") if isinstance(gen_kwargs, dict) else None
            budget = int(budget) if budget else BACKEND_DEFAULT_MAX_GEN_TOKS
            self.infos[inst.doc_id] = tuple(
                GenerationInfo.measure(t if isinstance(t, str) else "", p, budget, self.tokenizer)
                for t, p in zip(texts, structure[inst.doc_id], strict=True)
            )
        return {doc_id: tuple(i.trace for i in infos) for doc_id, infos in self.infos.items()}

    def doc_metrics(self, doc_id: int) -> dict[str, Any]:
        """``budget_hit`` and ``rtc_sample`` for one doc."""
        infos = self.infos[doc_id]
        record = infos[0].record()
        if len(infos) > 1:
            record["repeats"] = [i.record() for i in infos]
        return {BUDGET_KEY: sum(i.budget_hit for i in infos) / len(infos), SAMPLE_KEY: record}

    def class_correct(self, doc_id: int, correct: float) -> dict[str, float]:
        """Per class: share of the doc's generations in it × the doc's correctness."""
        infos = self.infos[doc_id]
        out = dict.fromkeys(CLASS_CORRECT_KEYS.values(), 0.0)
        for info in infos:
            out[CLASS_CORRECT_KEYS[info.trace.status]] += correct / len(infos)
        del out[CLASS_CORRECT_KEYS[TraceStatus.VALID]]  # RTCTask reports it already
        return out

    def aggregate_samples(self, items: Sequence[Any]) -> None:
        """Aggregation of ``rtc_sample``: log the budget report once per run; the value is null."""
        if not self._reported and self.infos:
            self._reported = True
            report = budget_report([i for infos in self.infos.values() for i in infos], self.threshold)
            if isinstance(self.metadata, dict):
                self.metadata["rtc_budget"] = report.as_dict()
            (log.warning if report.warn else log.info)("%s", report.message(self.task_name))
        return None
