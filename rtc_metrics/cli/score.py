"""``rtc score``: structural metrics for a JSONL file of model outputs."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rtc_metrics.cli._common import (
    add_format_arguments,
    fmt_interval,
    fmt_value,
    format_from_args,
    print_json,
)
from rtc_metrics.scoring import score_jsonl

#: Rows of the summary table: (label, key).
TABLE_ROWS = (
    ("VR  valid", "vr"),
    ("ER  empty", "er"),
    ("TR  truncated", "tr"),
    ("MR  missing", "mr"),
    ("answer rate", "answer_rate"),
    ("pass@1", "pass@1"),
    ("Rpass@1", "rpass@1"),
    ("acc | invalid", "acc_invalid"),
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("score", help="structural metrics for a JSONL file of outputs")
    parser.add_argument("path", metavar="FILE.jsonl", help="one JSON object per line")
    add_format_arguments(parser, required=True)
    parser.add_argument("--text-field", metavar="F", help="field holding the output (default: auto)")
    parser.add_argument("--correct-field", metavar="F", help="field holding correctness (bool or 0/1)")
    parser.add_argument(
        "--prompt-field",
        metavar="F",
        help="field holding the exact prompt; decides per line whether the trace was pre-opened",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = format_from_args(args)
    summary = score_jsonl(
        args.path,
        fmt,
        text_field=args.text_field,
        correct_field=args.correct_field,
        prompt_field=args.prompt_field,
    )
    data = {"file": args.path, "format": fmt.name, **summary.to_dict()}
    if args.json:
        print_json(data)
    else:
        print_summary(data, title=f"{args.path}  ({fmt.name}, n={summary.n})")
    return 0


def print_summary(data: dict[str, Any], title: str) -> None:
    """Print one summary dict (from TraceSummary.to_dict) as a rich table."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("%", justify="right")
    table.add_column("95% interval", justify="right")
    for label, key in TABLE_ROWS:
        table.add_row(label, fmt_value(data.get(key)), fmt_interval(data.get(f"{key}_ci")))
    chars = data.get("mean_trace_chars")
    table.add_row("mean trace chars", fmt_value(chars, percent=False), "")
    if data.get("anomalies"):
        table.caption = "anomalies: " + ", ".join(f"{k} {v}" for k, v in data["anomalies"].items())
    Console().print(table)
