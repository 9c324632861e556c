"""``rtc formats``: list the reasoning-format registry."""

from __future__ import annotations

import argparse
import dataclasses

from rich.console import Console
from rich.table import Table

from rtc_metrics.cli._common import print_json
from rtc_metrics.formats import list_formats


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("formats", help="list the registered reasoning formats")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    formats = list_formats()
    if args.json:
        print_json([dataclasses.asdict(f) for f in formats])
        return 0
    table = Table(title=f"{len(formats)} reasoning formats")
    for column in ("name", "open", "close", "prefixed", "special", "answer wrappers", "models"):
        table.add_column(column, overflow="fold")
    for f in formats:
        wrappers = ", ".join(f"{a}…{b}" for a, b in f.answer_wrappers)
        opens = " | ".join(f.opens)
        closes = " | ".join(f.closes)
        table.add_row(
            f.name,
            opens,
            closes,
            "yes" if f.prefixed else "",
            "yes" if f.special_tokens else "",
            wrappers,
            f.description,
        )
    Console().print(table)
    return 0
