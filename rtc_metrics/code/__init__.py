"""Code tasks (HumanEval+ / MBPP+): program extraction, EvalPlus records, pass@k, sandbox.

Typical use (the opt-in is required before anything runs)::

    from rtc_metrics.code import score_answers
    score_answers(doc, ["```python\\ndef add(a, b):\\n    return a + b\\n```"],
                  confirm_run_unsafe_code=True)   # {"pass@1": 1.0}
"""

from rtc_metrics.code.extract import answer_segment, extract_program, fenced_blocks
from rtc_metrics.code.metrics import (
    process_results,
    results_to_metrics,
    run_answers,
    score_answers,
    score_batch,
)
from rtc_metrics.code.optin import (
    UnsafeCodeNotConfirmed,
    confirm_run_unsafe_code,
    require_unsafe_code_confirmation,
    unsafe_code_confirmed,
)
from rtc_metrics.code.passk import pass_at_k
from rtc_metrics.code.records import CodeProblem, build_program, problem_from_record
from rtc_metrics.code.sandbox import (
    CodeJob,
    ExecutionResult,
    SandboxLimits,
    isolation_layers,
    run_job,
    run_jobs,
)

__all__ = [
    "CodeJob",
    "CodeProblem",
    "ExecutionResult",
    "SandboxLimits",
    "UnsafeCodeNotConfirmed",
    "answer_segment",
    "build_program",
    "confirm_run_unsafe_code",
    "extract_program",
    "fenced_blocks",
    "isolation_layers",
    "pass_at_k",
    "problem_from_record",
    "process_results",
    "require_unsafe_code_confirmation",
    "results_to_metrics",
    "run_answers",
    "run_job",
    "run_jobs",
    "score_answers",
    "score_batch",
    "unsafe_code_confirmed",
]
