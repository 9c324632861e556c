"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rtc_metrics.formats import TraceFormat, get_format
from rtc_metrics.io import InputError


def add_format_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """--format NAME | --open S --close S, and --prefixed / --no-prefixed."""
    group = parser.add_argument_group("reasoning format")
    group.add_argument("--format", dest="format_name", metavar="NAME", help="registry name (see `rtc formats`)")
    group.add_argument("--open", dest="open_delim", metavar="S", help="custom opening delimiter")
    group.add_argument("--close", dest="close_delim", metavar="S", help="custom closing delimiter")
    group.add_argument(
        "--prefixed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="outputs start inside a trace pre-opened by the prompt (default: the format's own)",
    )
    parser.set_defaults(format_required=required)


def format_from_args(args: argparse.Namespace) -> TraceFormat | None:
    """The TraceFormat named by --format or --open/--close, with --prefixed applied."""
    if args.format_name and (args.open_delim or args.close_delim):
        raise InputError("give either --format NAME or --open/--close, not both")
    if bool(args.open_delim) != bool(args.close_delim):
        raise InputError("custom delimiters need both --open S and --close S")
    if args.format_name:
        fmt = get_format(args.format_name)
    elif args.open_delim:
        fmt = TraceFormat(open=args.open_delim, close=args.close_delim)
    else:
        if args.format_required:
            raise InputError("name the reasoning format with --format NAME (see `rtc formats`) or --open/--close")
        return None
    return fmt if args.prefixed is None else fmt.with_prefixed(args.prefixed)


def fmt_value(value: Any, percent: bool = True) -> str:
    """A metric for a table: '–' when undefined, never 0."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f}" if percent else f"{value:.1f}"
    return str(value)


def fmt_interval(ci: Any) -> str:
    if not ci:
        return ""
    return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")
