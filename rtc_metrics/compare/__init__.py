"""``rtc compare``: leaderboards, collapse flags, figures and an HTML report from lm-eval
results, lm-eval samples (recounted) and SFT monitor curves.

Library use::

    from rtc_metrics.compare import load_inputs, build_leaderboard, make_figures
    board = build_leaderboard(load_inputs(["runs/"]), reference="base", sort="vr")
    for row in board.rows:
        print(row.model, row.step, row.task, row.value("vr"), row.metrics["vr"].ci)
"""

from typing import Any

from rtc_metrics.compare.leaderboard import SORT_COLUMNS, Leaderboard, build_leaderboard, flag_collapse
from rtc_metrics.compare.lmeval import LoadOptions
from rtc_metrics.compare.loading import Loaded, load_inputs
from rtc_metrics.compare.rows import METRICS, Collapse, Estimate, Row
from rtc_metrics.compare.tables import (
    markdown,
    rich_table,
    row_record,
    write_csv,
    write_json_rows,
    write_markdown,
)

__all__ = [
    "METRICS",
    "SORT_COLUMNS",
    "Collapse",
    "Estimate",
    "FigureSpec",
    "Leaderboard",
    "LoadOptions",
    "Loaded",
    "Row",
    "build_leaderboard",
    "flag_collapse",
    "load_inputs",
    "make_figures",
    "markdown",
    "render_html",
    "rich_table",
    "row_record",
    "save_figures",
    "write_csv",
    "write_html",
    "write_json_rows",
    "write_markdown",
]

#: Names that need matplotlib, imported on first use so the rest works without it.
_LAZY = {
    "FigureSpec": "figures",
    "make_figures": "figures",
    "save_figures": "figures",
    "render_html": "html",
    "write_html": "html",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"rtc_metrics.compare.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
