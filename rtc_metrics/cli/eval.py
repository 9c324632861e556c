"""``rtc eval``: the ``lm_eval`` command with rtc's tasks, backends and wrappers added.

Every argument goes to lm_eval unchanged, except that:

- rtc's task directory is added to the include paths (next to any ``--include_path``);
- the ``rtc-hf`` backend is registered, so ``--model rtc-hf`` works (lm_eval alone builds
  the model before it imports any plugin code, so it cannot reach plugin backends);
- ``--tasks rtc:NAME`` wraps the built-in task NAME in :class:`rtc_tasks.task.RTCTask`
  under the name ``rtc:NAME`` (its prompts, filters and metrics, trace-safe generation
  settings, plus the structural metrics);
- with ``--model vllm``, ``rtc_keeps_special_tokens`` is set in ``--metadata`` (vLLM
  decodes with special tokens kept);
- rtc's code tasks (and the groups holding them) without ``--confirm_run_unsafe_code`` stop
  at once with one line saying how to opt in, before the model is loaded.

``rtc eval ls tasks`` and ``rtc eval validate`` work as with lm_eval.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RUNS_CODE", "WRAP_PREFIX", "run_eval", "wrapper_yaml"]

#: ``--tasks rtc:gsm8k`` wraps the built-in ``gsm8k``.
WRAP_PREFIX = "rtc:"

#: Models that decode with special tokens kept (so special-token delimiters survive).
_KEEPS_SPECIAL_TOKENS = ("vllm", "vllm-vlm")

#: rtc tasks and groups that execute model-generated code (YAML ``unsafe_code: true``).
RUNS_CODE = ("rtc_humaneval_plus", "rtc_mbpp_plus", "rtc_evalplus", "rtc_paper")


def wrapper_yaml(builtin: str) -> str:
    """The YAML of a task that runs built-in ``builtin`` as an RTCTask named ``rtc:<builtin>``.

    Written to a file in an include path (or passed to lm_eval's ``--tasks`` as a path), it
    works with plain ``lm_eval`` too.
    """
    return (
        f"task: {json.dumps(WRAP_PREFIX + builtin)}\n"
        "class: !function rtc_tasks.task.RTCTask\n"
        f"rtc_base: {json.dumps(builtin)}\n"
    )


def _option(argv: list[str], name: str) -> tuple[int, str] | None:
    """(index of the value, value) of ``--name V`` or ``--name=V``; None when absent."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return i + 1, argv[i + 1]
        if arg.startswith(name + "="):
            return i, arg.split("=", 1)[1]
    return None


def _set_option(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with every ``--name V`` / ``--name=V`` removed and ``--name value`` appended."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return [*out, name, value]


def _rewrite(argv: list[str], wrap_dir: Path) -> tuple[list[str], list[str]]:
    """Write wrappers for ``rtc:NAME`` tasks into ``wrap_dir``; set vLLM metadata. Returns (argv, wrapped)."""
    wrapped: list[str] = []
    tasks = _option(argv, "--tasks")
    if tasks is not None:
        for spec in tasks[1].split(","):
            spec = spec.strip()
            if spec.startswith(WRAP_PREFIX) and len(spec) > len(WRAP_PREFIX):
                name = spec[len(WRAP_PREFIX) :]
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
                (wrap_dir / f"rtc_wrap_{safe}.yaml").write_text(wrapper_yaml(name), encoding="utf-8")
                wrapped.append(name)
    model = _option(argv, "--model")
    if model is not None and model[1] in _KEEPS_SPECIAL_TOKENS:
        meta = _option(argv, "--metadata")
        try:
            current = json.loads(meta[1]) if meta else {}
        except json.JSONDecodeError:
            current = None  # lm_eval reports the bad JSON itself
        if isinstance(current, dict):
            current.setdefault("rtc_keeps_special_tokens", True)
            argv = _set_option(argv, "--metadata", json.dumps(current))
    return argv, wrapped


@contextlib.contextmanager
def _extra_include_paths(paths: list[str]) -> Iterator[None]:
    """Make every TaskManager built in this process also index ``paths``.

    lm_eval's ``--include_path`` takes one directory; rtc's tasks and the generated
    wrappers must be visible next to the user's own.
    """
    from lm_eval.tasks import TaskManager

    original = TaskManager.__init__

    def init(self, *args, include_path=None, **kwargs):  # type: ignore[no-untyped-def]
        given = (
            []
            if include_path is None
            else list(include_path)
            if isinstance(include_path, list | tuple)
            else [include_path]
        )
        original(self, *args, include_path=[*paths, *given], **kwargs)

    TaskManager.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        TaskManager.__init__ = original  # type: ignore[method-assign]


def _missing_code_opt_in(argv: list[str]) -> str | None:
    """The refusal for code tasks run without the opt-in (lm_eval would refuse after loading the model)."""
    tasks = _option(argv, "--tasks")
    if tasks is None or "--confirm_run_unsafe_code" in argv or _option(argv, "--config") is not None:
        return None
    if {"--predict_only", "-x"} & set(argv):  # no metric, so no code runs
        return None
    unsafe = [t.strip() for t in tasks[1].split(",") if t.strip() in RUNS_CODE]
    if not unsafe:
        return None
    return (
        f"rtc eval: {', '.join(unsafe)} execute(s) model-generated code (sandboxed, see docs/code_tasks.md); "
        "add --confirm_run_unsafe_code to opt in"
    )


def run_eval(argv: list[str]) -> int:
    """Run lm_eval's CLI with ``argv`` (as typed after ``rtc eval``); returns the exit status."""
    refusal = _missing_code_opt_in(list(argv))
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2

    from lm_eval.__main__ import cli_evaluate

    import rtc_tasks
    import rtc_tasks.task

    # Plugin backends register on import; each loads only when asked for, since they pull in
    # lm-eval's hf (accelerate) or API-model (tenacity, aiohttp) machinery.
    if any("rtc-hf" in arg for arg in argv):
        import rtc_tasks.backends
    if any("rtc-chat-completions" in arg for arg in argv):
        import rtc_tasks.models

    with tempfile.TemporaryDirectory(prefix="rtc-wrap-") as tmp:
        argv, _ = _rewrite(list(argv), Path(tmp))
        saved = sys.argv
        sys.argv = ["lm_eval", *argv]
        try:
            with _extra_include_paths([rtc_tasks.tasks_path(), tmp]):
                cli_evaluate()
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        finally:
            sys.argv = saved
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    # `rtc eval ...` is dispatched before argparse (main() in rtc_metrics.cli); this entry
    # only lists the command in `rtc --help`.
    parser = sub.add_parser(
        "eval", add_help=False, help="lm_eval with rtc's tasks, the rtc-hf backend and rtc:NAME wrappers"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(func=lambda args: run_eval(args.args))
