"""pass@1 / pass@k for code answers: extraction, program building, sandboxed execution.

Independent of the harness classes: everything takes a dataset record (``doc``) and the
answer segments of its generations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rtc_metrics.code.extract import extract_program
from rtc_metrics.code.passk import pass_at_k
from rtc_metrics.code.records import build_program, problem_from_record
from rtc_metrics.code.sandbox import ExecutionResult, SandboxLimits, run_jobs
from rtc_metrics.io import InputError

__all__ = ["process_results", "results_to_metrics", "run_answers", "score_answers", "score_batch"]


def _answers(results: Any) -> list[str]:
    """Accept lm-eval's shapes: ``[answer]``, ``[[a1, ..., aK]]`` (a filter keeping all
    repeats) or a plain list of answers; ``None`` (no answer) counts as an empty answer."""
    if isinstance(results, str):
        return [results]
    items = list(results)
    if len(items) == 1 and isinstance(items[0], list | tuple):
        items = list(items[0])
    out = []
    for item in items:
        if item is None:
            out.append("")
        elif isinstance(item, str):
            out.append(item)
        else:
            raise InputError(f"code answers must be strings, got {type(item).__name__}")
    if not out:
        raise InputError("no generations to score for this document")
    return out


def run_answers(
    items: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    *,
    confirm_run_unsafe_code: bool | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> list[list[ExecutionResult]]:
    """Execute every answer of every ``(doc, answers)`` pair in one bounded pool.

    Returns, per doc, one :class:`ExecutionResult` per answer (same order). An answer with no
    code fails without starting a process.
    """
    jobs, slots = [], []
    results: list[list[ExecutionResult | None]] = []
    for d, (doc, answers) in enumerate(items):
        problem = problem_from_record(doc)
        row: list[ExecutionResult | None] = []
        for a, answer in enumerate(_answers(answers)):
            code = extract_program(answer, problem.entry_points)
            if not code.strip():
                row.append(ExecutionResult(False, "no code in the answer segment"))
                continue
            row.append(None)
            jobs.append(problem.job(build_program(problem, code)))
            slots.append((d, a))
        results.append(row)
    # The opt-in is checked even when every answer is empty, so a forgotten flag shows at once.
    executed = run_jobs(jobs, confirm_run_unsafe_code=confirm_run_unsafe_code, limits=limits, workers=workers)
    for (d, a), result in zip(slots, executed, strict=True):
        results[d][a] = result
    return results  # type: ignore[return-value]


def results_to_metrics(passed: Sequence[bool], ks: Sequence[int] | None = None) -> dict[str, float]:
    """``{"pass@1": ..., "pass@k": ...}`` from per-answer outcomes of one doc.

    ``ks`` defaults to ``[1]`` for one answer and ``[1, n]`` for ``n > 1`` (lm-eval ``repeats``);
    values of ``k`` above ``n`` are an error, not silently skipped.
    """
    n, c = len(passed), sum(bool(p) for p in passed)
    ks = list(ks) if ks is not None else sorted({1, n})
    return {f"pass@{k}": pass_at_k(n, c, k) for k in ks}


def score_answers(
    doc: Mapping[str, Any],
    answers: Sequence[str] | Any,
    *,
    ks: Sequence[int] | None = None,
    confirm_run_unsafe_code: bool | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> dict[str, float]:
    """pass@1 (and pass@k) of one doc's answers, executed in parallel in the sandbox."""
    (row,) = run_answers(
        [(doc, _answers(answers))],
        confirm_run_unsafe_code=confirm_run_unsafe_code,
        limits=limits,
        workers=workers,
    )
    return results_to_metrics([r.passed for r in row], ks)


def score_batch(
    items: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    *,
    ks: Sequence[int] | None = None,
    confirm_run_unsafe_code: bool | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> list[dict[str, float]]:
    """:func:`score_answers` for many docs at once, parallel across all of their answers."""
    rows = run_answers(items, confirm_run_unsafe_code=confirm_run_unsafe_code, limits=limits, workers=workers)
    return [results_to_metrics([r.passed for r in row], ks) for row in rows]


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """lm-eval ``process_results`` hook: ``results`` holds this doc's ANSWER segments.

    Returns ``{"pass@1": float}`` plus ``{"pass@<n>": float}`` when there are n > 1 answers.
    Runs only with the opt-in (``--confirm_run_unsafe_code``); see :mod:`rtc_metrics.code.optin`.
    """
    return score_answers(doc, results)
