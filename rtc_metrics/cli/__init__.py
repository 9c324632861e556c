"""The ``rtc`` command. Each subcommand lives in its own module with a ``register`` function."""

from __future__ import annotations

import argparse
import importlib
import sys

from rtc_metrics.detection import FormatDetectionError
from rtc_metrics.formats import UnknownFormatError
from rtc_metrics.io import InputError

#: Subcommand modules under ``rtc_metrics.cli``, in help order.
COMMANDS = ("score", "formats", "detect", "eval", "tasks-path", "compare", "sft", "demo")

#: Errors that are the user's to fix: printed as one line, exit status 2.
USER_ERRORS = (InputError, UnknownFormatError, FormatDetectionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtc", description="Reasoning-trace collapse: structural metrics for reasoning models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rtc_metrics.cli.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtc`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    # `rtc eval` forwards its arguments to lm_eval untouched, so it bypasses argparse.
    if argv and argv[0] == "eval" and "eval" in COMMANDS:
        from rtc_metrics.cli.eval import run_eval

        return run_eval(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"rtc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
