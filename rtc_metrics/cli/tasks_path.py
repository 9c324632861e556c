"""``rtc tasks-path``: print the directory of rtc's lm-eval task YAMLs (for --include_path)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tasks-path",
        help='print the rtc task directory, for lm_eval --include_path "$(rtc tasks-path)"',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rtc_tasks import tasks_path

    print(tasks_path())
    return 0
