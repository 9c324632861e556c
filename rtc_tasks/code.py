"""HumanEval+ / MBPP+ as rtc tasks: prompts, record checks, and batch-scored ``pass@k``.

``RTCCodeTask`` is an :class:`~rtc_tasks.task.RTCTask` (structure from the raw generations,
filters and metrics on the answer segment only) whose answer metric is ``pass@1`` (plus
``pass@<K>`` with ``repeats: K``), computed by running the extracted program in the sandbox of
:mod:`rtc_metrics.code`.

Why a subclass: lm-eval calls ``process_results`` one doc at a time, which would execute one
problem at a time. Here ``apply_filters`` (called once per task, after generation) scores every
doc of every filter in one :func:`rtc_metrics.code.score_batch` call, parallel across problems
(``rtc_code_workers`` workers, default: CPU count); ``process_results`` then reads that doc's
result. The YAML names :func:`rtc_metrics.code.metrics.process_results` (the same computation
for one doc, what a plain ConfigurableTask would call per doc): lm-eval needs a
``process_results`` for a metric that is not in its registry, and it documents the metric.

Opt-in: the YAMLs set ``unsafe_code: true``, so lm-eval refuses the run without
``--confirm_run_unsafe_code``; the sandbox checks the same flag again before anything runs.
``--predict_only`` runs no code, so it needs no opt-in (see :meth:`RTCCodeTask.override_metric`).

Metadata keys (``--metadata``): ``rtc_code_workers`` (parallel sandboxes) and
``rtc_code_timeout`` (wall seconds per problem, default 10).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from lm_eval.api.filter import Filter
from lm_eval.api.metrics import mean

from rtc_metrics.code import SandboxLimits, problem_from_record, score_batch
from rtc_metrics.io import InputError
from rtc_tasks.settings import RTCSettingsError
from rtc_tasks.task import RTCTask

__all__ = [
    "HUMANEVAL_INSTRUCTION",
    "MBPP_INSTRUCTION",
    "KeepAllAnswers",
    "RTCCodeTask",
    "humaneval_prompt",
    "mbpp_prompt",
    "process_humaneval",
    "process_mbpp",
]

log = logging.getLogger(__name__)

#: Appended to the HumanEval+ code prompt (signature + docstring), which is shown fenced.
HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function (its signature "
    "and any imports it needs) in a single ```python code block."
)
#: Closes the MBPP+ prompt (task description + one of its asserts, which shows the signature).
MBPP_INSTRUCTION = "Write the function in a single ```python code block."


class KeepAllAnswers(Filter):
    """Pass every answer segment of a doc through (lm-eval's default ``take_first`` keeps one).

    pass@k needs all ``repeats`` answers; with one repeat this is ``[answer]``.
    """

    def apply(self, resps: Iterable[list[Any]], docs: list[dict[str, Any]]) -> list[list[Any]]:
        return [list(r) for r in resps]


# --- documents and prompts -------------------------------------------------------------------
def _check_records(dataset: Any, kind: str, task: str) -> Any:
    # Fail before generation, naming the record, rather than after hours of it.
    for i, record in enumerate(dataset):
        try:
            problem = problem_from_record(record)
        except InputError as exc:
            raise InputError(f"{task}: record {i}: {exc}") from None
        if problem.kind != kind:
            raise InputError(
                f"{task}: record {i} (task_id {problem.task_id}) is a {problem.kind} record, not {kind}; "
                "point rtc_data_files for this task at the right file"
            )
    return dataset


def process_humaneval(dataset: Any) -> Any:
    """Check that every record is a usable HumanEval+ record (records are kept as they are)."""
    return _check_records(dataset, "humaneval", "rtc_humaneval_plus")


def process_mbpp(dataset: Any) -> Any:
    """Check that every record is a usable MBPP+ record (records are kept as they are)."""
    return _check_records(dataset, "mbpp", "rtc_mbpp_plus")


def humaneval_prompt(doc: dict[str, Any]) -> str:
    """The instruction, then the HumanEval+ prompt (imports, signature, docstring) fenced."""
    problem = problem_from_record(doc)
    return f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{problem.prompt.strip(chr(10))}\n```"


def mbpp_prompt(doc: dict[str, Any]) -> str:
    """The MBPP+ task description, the function name and an example assert, the instruction."""
    problem = problem_from_record(doc)
    name = problem.entry_points[0]
    asserts = doc.get("test_list") or []
    parts = [problem.prompt.strip(), f"The function must be called `{name}`."]
    if asserts and isinstance(asserts[0], str):
        parts.append(f"Your code should pass this test:\n\n```python\n{asserts[0].strip()}\n```")
    parts.append(MBPP_INSTRUCTION)
    return "\n\n".join(parts)


# --- the task --------------------------------------------------------------------------------
def _positive(metadata: dict[str, Any], key: str, kind: type, task: str) -> Any:
    value = metadata.get(key)
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number <= 0 or isinstance(value, bool):
        raise RTCSettingsError(f"{task}: --metadata {key} must be a positive {kind.__name__}, got {value!r}")
    return number


class RTCCodeTask(RTCTask):
    """An rtc task scored by executing the answer's program: ``pass@1`` (and ``pass@K``)."""

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        download_mode: Any = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        # The explicit ``config`` parameter matters: lm-eval passes the YAML only to a
        # constructor whose signature names it (tasks/_factory.py).
        super().__init__(data_dir=data_dir, cache_dir=cache_dir, download_mode=download_mode, config=config)
        metadata = self.config.metadata or {}
        task = str(self.config.task)
        self._rtc_code_workers: int | None = _positive(metadata, "rtc_code_workers", int, task)
        timeout = _positive(metadata, "rtc_code_timeout", float, task)
        self._rtc_code_limits = SandboxLimits(timeout_s=timeout) if timeout else None
        #: (doc_id, JSON of that doc's filtered answers) -> {"pass@1": ..., ...}
        self._rtc_code_scores: dict[tuple[int, str], dict[str, float]] = {}
        self._rtc_add_pass_metrics()

    def _rtc_add_pass_metrics(self) -> None:
        repeats = int(self.config.repeats or 1)
        for k in sorted({1, repeats}):
            self._aggregation_list[f"pass@{k}"] = mean
            self._higher_is_better[f"pass@{k}"] = True

    def override_metric(self, metric_name: str) -> None:
        # --predict_only: no metric is computed, so no generated code runs, and lm-eval's
        # unsafe-code refusal (it checks UNSAFE_CODE after this call) has nothing to guard.
        super().override_metric(metric_name)
        self.UNSAFE_CODE = False

    def _predict_only(self) -> bool:
        return "bypass" in self._metric_fn_list

    def apply_filters(self) -> Any:
        """Filter as RTCTask does, then score every doc's answers in one parallel batch."""
        out = super().apply_filters()
        self._rtc_code_scores = {}
        if self._predict_only() or not self._instances:
            return out
        by_doc: dict[int, list[Any]] = {}
        for inst in self._instances:
            by_doc.setdefault(inst.doc_id, []).append(inst)
        for instances in by_doc.values():
            instances.sort(key=lambda x: x.idx)
        # Filters that give the same answers for a doc share one execution.
        batch: dict[tuple[int, str], tuple[dict[str, Any], list[Any]]] = {}
        for filter_key in self._instances[0].filtered_resps:
            for doc_id, instances in by_doc.items():
                results = [inst.filtered_resps[filter_key] for inst in instances]
                batch.setdefault((doc_id, json.dumps(results)), (instances[0].doc, results))
        log.info("%s: scoring %d docs' programs in the sandbox", self.config.task, len(batch))
        scores = score_batch(list(batch.values()), limits=self._rtc_code_limits, workers=self._rtc_code_workers)
        self._rtc_code_scores = dict(zip(batch, scores, strict=True))
        return out

    def _task_metrics(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        if self._predict_only():
            return super()._task_metrics(doc, results)
        scored = self._rtc_code_scores.get((self._rtc_cursor, json.dumps(results)))
        if scored is None:
            raise RuntimeError(
                f"{self.config.task}: doc {self._rtc_cursor} was not scored; RTCCodeTask.process_results "
                "must run inside lm-eval's evaluation loop (after apply_filters)"
            )
        return dict(scored)
