"""rtc_tasks: lm-evaluation-harness tasks that report reasoning-trace structure.

lm-eval has no plugin discovery, so the YAML files ship inside this package and the
directory is passed with ``--include_path`` (``rtc tasks-path`` prints it)::

    lm_eval --model hf --model_args pretrained=... --include_path "$(rtc tasks-path)" --tasks rtc_gsm8k

Importing this package does not import lm-eval; :mod:`rtc_tasks.task` does.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TASKS_DIR", "tasks_path"]

#: The directory holding the task YAMLs (the value for ``--include_path``).
TASKS_DIR = Path(__file__).resolve().parent


def tasks_path() -> str:
    """The directory to pass to lm_eval's ``--include_path``."""
    return str(TASKS_DIR)
