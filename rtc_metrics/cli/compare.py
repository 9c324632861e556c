"""``rtc compare``: leaderboard, collapse flag, figures and HTML report from many runs."""

from __future__ import annotations

import argparse

from rtc_metrics.cli._common import add_format_arguments, format_from_args
from rtc_metrics.io import InputError

SORT_HELP = "model, step, task, n, pass@1, vr, er, tr, mr, rpass@1, vr_drop"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="leaderboard, collapse flag, figures and HTML report from lm-eval runs and monitor curves",
        description="Each RESULTS is an lm-eval output folder, a results_<date>.json, a "
        "samples_<task>_<date>.jsonl (recounted exactly) or an SFT monitor curve .jsonl.",
    )
    parser.add_argument("inputs", nargs="+", metavar="RESULTS", help="folders and files to compare")
    parser.add_argument(
        "--sort",
        metavar="COLUMN",
        help=f"sort lines by COLUMN ({SORT_HELP}) of the first task, or by TASK:COLUMN",
    )
    parser.add_argument(
        "--reference",
        metavar="MODEL[@STEP]",
        help="flag rows whose VR is significantly below this row's (per task)",
    )
    parser.add_argument(
        "--decompose",
        nargs=2,
        metavar=("BEFORE", "AFTER"),
        help="split the accuracy change from BEFORE to AFTER (MODEL[@STEP]) into a structural part "
        "(class shares moved) and a conditional part (accuracy within classes moved), per task",
    )
    parser.add_argument(
        "--filter",
        dest="filter_name",
        metavar="NAME",
        help="lm-eval filter whose answer metric and Rpass@1 to show (default: each task's first)",
    )
    parser.add_argument(
        "--metric", metavar="NAME", help="answer metric to show as pass@1 (default: the task's own)"
    )
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--csv", metavar="PATH", help="write one CSV line per model, step and task")
    parser.add_argument("--json", metavar="PATH", help="write the rows as a JSON list")
    parser.add_argument("--figures", metavar="DIR", help="write PNG and SVG figures into DIR")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    add_format_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so other subcommands start fast and work without the plot extra.
    from rich.console import Console

    from rtc_metrics.compare import LoadOptions, build_leaderboard, load_inputs
    from rtc_metrics.compare.tables import rich_table, write_csv, write_json_rows, write_markdown

    options = LoadOptions(fmt=format_from_args(args), filter_name=args.filter_name, metric=args.metric)
    board = build_leaderboard(load_inputs(args.inputs, options), reference=args.reference, sort=args.sort)
    console = Console(stderr=False)
    if not args.quiet:
        console.print(rich_table(board))
    written = []
    if args.json:
        write_json_rows(board, args.json)
        written.append(args.json)
    if args.csv:
        write_csv(board, args.csv)
        written.append(args.csv)
    if args.markdown:
        write_markdown(board, args.markdown)
        written.append(args.markdown)
    if args.figures or args.html:
        try:
            from rtc_metrics.compare.figures import make_figures, save_figures
            from rtc_metrics.compare.html import write_html
        except ImportError as exc:
            raise InputError(
                f"--figures/--html need matplotlib ({exc}); pip install 'rtc-eval[plot]'"
            ) from None
        figures = make_figures(board)
        if args.figures:
            written += [str(p) for p in save_figures(figures, args.figures)]
        if args.html:
            write_html(board, figures, args.html)
            written.append(args.html)
    if args.decompose:
        from rich.text import Text

        from rtc_metrics.compare.leaderboard import decompose_pair

        for change in decompose_pair(board.rows, *args.decompose):
            console.print(Text(change.sentence()))
    if written and not args.quiet:
        console.print("wrote " + ", ".join(written), style="dim")
    return 0
