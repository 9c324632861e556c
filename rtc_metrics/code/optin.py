"""The explicit opt-in for running model-generated code (lm-eval's ``confirm_run_unsafe_code``)."""

from __future__ import annotations

import os
import sys

__all__ = [
    "OPT_IN_ENV",
    "UnsafeCodeNotConfirmed",
    "confirm_run_unsafe_code",
    "require_unsafe_code_confirmation",
    "unsafe_code_confirmed",
]

#: Environment variable that opts in for direct (non-lm-eval) use, e.g. in scripts and CI.
OPT_IN_ENV = "RTC_CONFIRM_RUN_UNSAFE_CODE"

_confirmed = False


class UnsafeCodeNotConfirmed(RuntimeError):
    """Generated code was about to run without the user's explicit opt-in."""

    def __init__(self) -> None:
        super().__init__(
            "Running model-generated code is disabled until you opt in. With lm-eval, add "
            "--confirm_run_unsafe_code to the lm_eval command (Python: "
            "simple_evaluate(..., confirm_run_unsafe_code=True)); calling rtc_metrics.code directly, "
            f"pass confirm_run_unsafe_code=True or set {OPT_IN_ENV}=1. "
            "The code runs sandboxed (see docs/code_tasks.md), but no sandbox is perfect."
        )


def confirm_run_unsafe_code() -> None:
    """Opt in for the rest of this process (what ``--confirm_run_unsafe_code`` means)."""
    global _confirmed
    _confirmed = True


def _lm_eval_confirmed() -> bool:
    """True when called inside ``lm_eval.evaluator.evaluate(..., confirm_run_unsafe_code=True)``.

    lm-eval passes the flag to ``evaluate`` but not to tasks or metric functions, and
    ``process_results`` runs inside that call; reading the caller's own argument makes
    ``--confirm_run_unsafe_code`` the single switch instead of asking users for a second one.
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "evaluate" and frame.f_globals.get("__name__") == "lm_eval.evaluator":
            return frame.f_locals.get("confirm_run_unsafe_code") is True
        frame = frame.f_back
    return False


def unsafe_code_confirmed(explicit: bool | None = None) -> bool:
    """Whether running generated code is allowed.

    ``explicit`` (a function argument) wins when given; otherwise any of: this process called
    :func:`confirm_run_unsafe_code`, ``RTC_CONFIRM_RUN_UNSAFE_CODE=1``, or we are inside an
    lm-eval evaluation started with ``confirm_run_unsafe_code=True``.
    """
    if explicit is not None:
        return bool(explicit)
    if _confirmed or os.environ.get(OPT_IN_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return True
    return _lm_eval_confirmed()


def require_unsafe_code_confirmation(explicit: bool | None = None) -> None:
    """Raise :class:`UnsafeCodeNotConfirmed` unless :func:`unsafe_code_confirmed`."""
    if not unsafe_code_confirmed(explicit):
        raise UnsafeCodeNotConfirmed()
