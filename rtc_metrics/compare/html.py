"""``--html``: one self-contained page (inline CSS, figures as base64 SVG data URIs).

No script and no external resource of any kind, so the page opens the same from a
disk, a mail attachment or a CI artifact, and a browser has nothing to fetch. SVGs are
embedded as ``<img>`` data URIs rather than inline ``<svg>`` so the ids matplotlib
writes in each figure cannot clash within the page.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape

from rtc_metrics.compare.figures import FigureSpec, render
from rtc_metrics.compare.leaderboard import Leaderboard
from rtc_metrics.compare.rows import LABELS, METRICS
from rtc_metrics.compare.tables import collapse_text, fmt_ci, fmt_pct
from rtc_metrics.io import atomic_write

__all__ = ["render_html", "write_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1a1a1a}
h1{font-size:1.5em;margin:0 0 4px} h2{font-size:1.15em;margin:28px 0 8px}
p.meta{color:#555;margin:0 0 16px}
.wrap{overflow-x:auto}
table.board{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
table.board th,table.board td{border:1px solid #ccc;padding:4px 7px;text-align:right;vertical-align:top}
table.board th{background:#f2f2f2}
table.board th.task{background:#dde8f3;text-align:center}
table.board td.model,table.board th.model{text-align:left;white-space:nowrap}
table.board td.first{border-left:2px solid #666}
table.board tr:nth-child(even) td{background:#fafafa}
.ci{display:block;color:#666;font-size:11px;white-space:nowrap}
.na{color:#999}
td.collapse{background:#fde0d0 !important;color:#7a1d00;font-weight:600}
td.ref{color:#0072B2;font-weight:600}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
figure{margin:0}
figure img{width:100%;height:auto;border:1px solid #e2e2e2}
figcaption{color:#444;font-size:13px}
ul.notes li,ul.sources li{font-size:13px;margin:2px 0}
"""


def _metric_cell(est, first: bool) -> str:  # type: ignore[no-untyped-def]
    cls = ' class="first"' if first else ""
    if est is None or est.value is None:
        return f'<td{cls}><span class="na">–</span></td>'
    ci = fmt_ci(est)
    return f"<td{cls}>{fmt_pct(est.value)}" + (f'<span class="ci">{ci}</span>' if ci else "") + "</td>"


def _table(board: Leaderboard) -> str:
    per_task = len(METRICS) + (1 if board.reference else 0)
    head1 = ['<th class="model" rowspan="2">model</th>', '<th rowspan="2">step</th>']
    head2 = []
    for task in board.tasks:
        head1.append(f'<th class="task" colspan="{per_task}">{escape(task)}</th>')
        head2 += [f"<th>{escape(LABELS[k])}</th>" for k in METRICS]
        if board.reference:
            head2.append(f"<th>collapse vs {escape(board.reference)}</th>")
    body = []
    for line in board.lines:
        cells = [
            f'<td class="model">{escape(line[0])}</td>',
            f"<td>{'' if line[1] is None else line[1]}</td>",
        ]
        for task in board.tasks:
            row = board.cell(line, task)
            for i, key in enumerate(METRICS):
                cells.append(_metric_cell(None if row is None else row.metrics[key], i == 0))
            if board.reference:
                text = collapse_text(row)
                cls = "collapse" if text.startswith("COLLAPSE") else "ref" if text == "ref" else ""
                cells.append(f'<td class="{cls}">{escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="wrap"><table class="board"><thead><tr>'
        + "".join(head1)
        + "</tr><tr>"
        + "".join(head2)
        + "</tr></thead><tbody>"
        + "\n".join(body)
        + "</tbody></table></div>"
    )


def _figure(spec: FigureSpec) -> str:
    data = base64.b64encode(render(spec, "svg")).decode("ascii")
    caption = escape(spec.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_html(board: Leaderboard, figures: list[FigureSpec], title: str = "rtc compare") -> str:
    """The whole page as a string."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    legend = (
        "Values are percentages with 95% intervals (Wilson, from counts); – means not reported. "
        "pass@1 is each task's own answer metric; VR/ER/TR/MR are the valid, empty, truncated and missing "
        "trace rates; Rpass@1 is accuracy among valid-trace generations."
    )
    if board.reference:
        legend += (
            f" COLLAPSE marks rows whose VR is significantly below the reference {board.reference}: "
            "the 95% Newcombe interval of the drop lies wholly above 0."
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {when} from {len(board.sources)} input file(s). {escape(legend)}</p>',
        "<h2>Leaderboard</h2>",
        _table(board),
    ]
    if board.notes:
        parts += ["<h2>Notes</h2>", '<ul class="notes">']
        parts += [f"<li>{escape(n)}</li>" for n in board.notes]
        parts.append("</ul>")
    if figures:
        parts.append('<h2>Figures</h2><div class="figs">')
        parts += [_figure(spec) for spec in figures]
        parts.append("</div>")
    parts += ["<h2>Inputs</h2>", '<ul class="sources">']
    parts += [f"<li><code>{escape(s)}</code></li>" for s in board.sources]
    parts += ["</ul>", "</body></html>", ""]
    return "\n".join(parts)


def write_html(board: Leaderboard, figures: list[FigureSpec], path: str) -> None:
    """Write the page atomically."""
    with atomic_write(path) as handle:
        handle.write(render_html(board, figures))
