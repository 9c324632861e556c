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
from rtc_metrics.io import InputError
from rtc_metrics.lmeval_logs import is_lmeval_output, rescore
from rtc_metrics.scoring import score_jsonl
from rtc_metrics.show import SHOW_CHOICES, examples_jsonl, examples_lmeval, print_examples

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
    ("acc | valid", "acc_valid"),
    ("acc | empty", "acc_empty"),
    ("acc | truncated", "acc_truncated"),
    ("acc | missing", "acc_missing"),
    ("budget hit", "budget_hit"),
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="structural metrics for a JSONL file of outputs, or re-score lm-eval --log_samples output",
    )
    parser.add_argument(
        "path",
        metavar="PATH",
        help="a JSONL file (one output per line), or lm-eval output: a results dir, results_*.json "
        "or samples_*.jsonl",
    )
    add_format_arguments(parser, required=False)
    parser.add_argument("--text-field", metavar="F", help="field holding the output (default: auto)")
    parser.add_argument("--correct-field", metavar="F", help="field holding correctness (bool or 0/1)")
    parser.add_argument(
        "--prompt-field",
        metavar="F",
        help="field holding the exact prompt; decides per line whether the trace was pre-opened",
    )
    parser.add_argument(
        "--tokenizer", metavar="NAME_OR_PATH", help="also measure trace lengths in this tokenizer's tokens"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--show",
        metavar="STATUS",
        help="also print a few examples of a class (valid, empty, truncated, missing, or all): "
        "trace and answer side by side",
    )
    parser.add_argument("--show-n", type=int, default=3, metavar="K", help="examples per class (default 3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = format_from_args(args)
    if args.show is not None:
        _wanted_check(args)
    if is_lmeval_output(args.path):
        code = run_lmeval(args, fmt)
        if args.show is not None:
            print_examples(examples_lmeval(args.path, fmt, args.show, args.show_n))
        return code
    if fmt is None:
        raise InputError("name the reasoning format with --format NAME (see `rtc formats`) or --open/--close")
    summary = score_jsonl(
        args.path,
        fmt,
        text_field=args.text_field,
        correct_field=args.correct_field,
        prompt_field=args.prompt_field,
        tokenizer=_load_tokenizer(args.tokenizer) if args.tokenizer else None,
    )
    data = {"file": args.path, "format": fmt.name, **summary.to_dict()}
    if args.json:
        print_json(data)
    else:
        print_summary(data, title=f"{args.path}  ({fmt.name}, n={summary.n})")
    if args.show is not None:
        print_examples(
            examples_jsonl(
                args.path, fmt, args.show, args.show_n, text_field=args.text_field, prompt_field=args.prompt_field
            )
        )
    return 0


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise InputError(f"--tokenizer {name!r} could not be loaded ({exc}); give a local tokenizer folder") from None


def _wanted_check(args: argparse.Namespace) -> None:
    if args.show not in SHOW_CHOICES:
        raise InputError(f"--show {args.show!r}: choose one of {', '.join(SHOW_CHOICES)}")
    if args.show_n < 1:
        raise InputError(f"--show-n {args.show_n}: must be at least 1")


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
    if data.get("mean_trace_tokens") is not None:
        table.add_row("mean trace tokens", fmt_value(data["mean_trace_tokens"], percent=False), "")
    if data.get("anomalies"):
        table.caption = "anomalies: " + ", ".join(f"{k} {v}" for k, v in data["anomalies"].items())
    Console().print(table)


def run_lmeval(args: argparse.Namespace, fmt: Any) -> int:
    """Re-score lm-eval --log_samples output: one table per task and filter, pooled groups."""
    data = rescore(args.path, fmt)
    if args.json:
        print_json(data)
        return 0
    for run in data["runs"]:
        for task, info in run["tasks"].items():
            for filter_key, summary in info["filters"].items():
                title = (
                    f"{task}  filter={filter_key}  ({info['format']}, {info['n_docs']} docs, "
                    f"correct = {info['answer_metric'] or 'n/a'})"
                )
                print_summary(summary, title=title)
        for group, by_filter in run["groups"].items():
            for filter_key, summary in by_filter.items():
                print_summary(
                    summary, title=f"group {group}  filter={filter_key}  (pooled, n={summary['n']})"
                )
    return 0
