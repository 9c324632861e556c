"""The leaderboard as JSON records, CSV, Markdown and a rich table.

Tables show percentages with one decimal and the 95% interval; a missing or undefined
metric is "–" (never 0). JSON and CSV carry fractions in [0, 1]; missing is null in
JSON and an empty cell in CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rtc_metrics.compare.leaderboard import Leaderboard
from rtc_metrics.compare.rows import LABELS, METRICS, Estimate, Row
from rtc_metrics.io import atomic_write, write_json

__all__ = [
    "DASH",
    "collapse_text",
    "fmt_ci",
    "fmt_pct",
    "markdown",
    "rich_table",
    "row_record",
    "write_csv",
    "write_json_rows",
    "write_markdown",
]

DASH = "–"


def fmt_pct(value: float | None) -> str:
    """ "42.5" for 0.425; "–" when missing."""
    return DASH if value is None else f"{100 * value:.1f}"


def fmt_ci(est: Estimate) -> str:
    """ "[38.1, 47.0]", or "" without an interval."""
    return "" if est.ci is None else f"[{100 * est.ci[0]:.1f}, {100 * est.ci[1]:.1f}]"


def collapse_text(row: Row | None) -> str:
    """The VR drop against the reference, e.g. "COLLAPSE drop 32.0 pp [18.5, 44.1]"
    (flagged), "drop 3.1 pp [-9.0, 15.2]" (not significant), "ref", or "–" without counts."""
    if row is None or row.collapse is None:
        return ""
    c = row.collapse
    if c.is_reference:
        return "ref"
    if c.drop is None:
        return DASH
    drop = f"drop {100 * c.drop:.1f} pp [{100 * c.drop_low:.1f}, {100 * c.drop_high:.1f}]"  # type: ignore[operator]
    return f"COLLAPSE {drop}" if c.flagged else drop


def row_record(row: Row) -> dict[str, Any]:
    """A row for --json: the metric keys, their intervals, counts and provenance."""
    out: dict[str, Any] = {"model": row.model, "step": row.step, "task": row.task}
    for key in METRICS:
        out[key] = row.metrics[key].value
    for key in METRICS:
        out[f"{key}_ci"] = list(row.metrics[key].ci) if row.metrics[key].ci else None
    c = row.collapse
    out.update(
        {
            "n": row.n,
            "n_valid": row.metrics["vr"].successes,
            "answer_metric": row.answer_metric,
            "strategy": row.strategy,
            "collapse": None if c is None else c.flagged,
            "reference": None if c is None else c.reference,
            "vr_drop": None if c is None or c.is_reference else c.drop,
            "vr_drop_ci": None if c is None or c.drop_low is None else [c.drop_low, c.drop_high],
            "acc_change": None if row.decomposition is None else row.decomposition.as_dict(),
            "model_name": row.model_name,
            "kind": row.kind,
            "source": row.source,
            "date": None
            if row.date is None
            else datetime.fromtimestamp(row.date, tz=timezone.utc).isoformat(),
        }
    )
    return out


def write_json_rows(board: Leaderboard, path: str) -> None:
    """``--json``: a list of row records (strict JSON; NaN never appears)."""
    write_json(path, [row_record(r) for r in board.rows])


def write_csv(board: Leaderboard, path: str) -> None:
    """``--csv``: one line per (model, step, task); intervals as ``<metric>_low/_high``."""
    columns = ["model", "step", "task", "n"]
    for key in METRICS:
        columns += [key, f"{key}_low", f"{key}_high"]
    columns += [
        "answer_metric",
        "strategy",
        "collapse",
        "reference",
        "vr_drop",
        "vr_drop_low",
        "vr_drop_high",
        "kind",
        "source",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in board.rows:
        rec = row_record(row)
        line = {k: rec.get(k) for k in columns}
        for key in METRICS:
            ci = rec[f"{key}_ci"]
            line[f"{key}_low"], line[f"{key}_high"] = ci if ci else (None, None)
        drop_ci = rec["vr_drop_ci"]
        line["vr_drop_low"], line["vr_drop_high"] = drop_ci if drop_ci else (None, None)
        writer.writerow({k: "" if v is None else v for k, v in line.items()})
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def _cell(row: Row | None, key: str) -> str:
    if row is None:
        return DASH
    est = row.metrics[key]
    ci = fmt_ci(est)
    return fmt_pct(est.value) + (f" {ci}" if ci else "")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(board: Leaderboard) -> str:
    """The leaderboard as a Markdown document: one wide table, then notes."""
    header = ["model", "step"]
    for task in board.tasks:
        header += [f"{task} {LABELS[k]}" for k in METRICS]
        if board.reference:
            header.append(f"{task} collapse")
    out = [
        "# rtc compare",
        "",
        "Values in %, with 95% intervals (Wilson from counts); – = not reported."
        + (
            f" Collapse: VR significantly below the reference {board.reference} (Newcombe 95% interval)."
            if board.reference
            else ""
        ),
        "",
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "|" + "|".join(["---", "--:"] + ["--:"] * (len(header) - 2)) + "|",
    ]
    for line in board.lines:
        cells = [line[0], "" if line[1] is None else str(line[1])]
        for task in board.tasks:
            row = board.cell(line, task)
            cells += [_cell(row, k) for k in METRICS]
            if board.reference:
                text = collapse_text(row)
                cells.append(f"**{text}**" if text.startswith("COLLAPSE") else text)
        out.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    changes = [r for r in board.rows if r.decomposition is not None and r.collapse is not None]
    if changes:
        out += ["", "Accuracy change vs the reference (structural + conditional, 95% bootstrap intervals):", ""]
        out += [
            f"- {_md_escape(r.task)}: {_md_escape(r.collapse.reference)} → {_md_escape(r.label)}: "  # type: ignore[union-attr]
            f"{_md_escape(r.decomposition.sentence())}"  # type: ignore[union-attr]
            for r in changes
        ]
    if board.notes:
        out += ["", "Notes:", ""] + [f"- {_md_escape(n)}" for n in board.notes]
    return "\n".join(out) + "\n"


def write_markdown(board: Leaderboard, path: str) -> None:
    with atomic_write(path) as handle:
        handle.write(markdown(board))


def rich_table(board: Leaderboard) -> Group:
    """The leaderboard for the terminal: one table per task (the column groups of the
    Markdown/HTML table, stacked so they fit a terminal), each cell the value over its interval."""
    tables: list[Table | Text] = []
    for task in board.tasks:
        table = Table(title=f"{task}: % with 95% intervals", title_justify="left", title_style="bold")
        table.add_column("model", overflow="fold")
        table.add_column("step", justify="right")
        for key in METRICS:
            table.add_column(LABELS[key], justify="right", overflow="fold")
        if board.reference:
            table.add_column(f"VR vs {board.reference}", justify="right", overflow="fold")
        for line in board.lines:
            row = board.cell(line, task)
            if row is None:
                continue
            cells: list[Text | str] = [line[0], "" if line[1] is None else str(line[1])]
            for key in METRICS:
                est = row.metrics[key]
                cell = Text(fmt_pct(est.value))
                if est.ci:
                    cell.append("\n" + fmt_ci(est), style="dim")
                cells.append(cell)
            if board.reference:
                text = collapse_text(row)
                flagged = text.startswith("COLLAPSE")
                cells.append(
                    Text(
                        text.replace("COLLAPSE ", "COLLAPSE\n").replace(" [", "\n["),
                        style="bold red" if flagged else "",
                    )
                )
            table.add_row(*cells)
        tables.append(table)
    changes = [
        f"{r.task}: {r.collapse.reference} → {r.label}: {r.decomposition.sentence()}"
        for r in board.rows
        if r.decomposition is not None and r.collapse is not None
    ]
    if changes:
        tables.append(Text("accuracy change vs the reference (structural + conditional):\n" + "\n".join(changes)))
    if board.notes:
        tables.append(Text("\n".join(f"note: {n}" for n in board.notes), style="yellow"))
    return Group(*tables)
