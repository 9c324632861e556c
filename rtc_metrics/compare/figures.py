"""Figures: pass@1, VR and Rpass@1 against training step, and final-checkpoint bars.

Colours are the Okabe-Ito palette (distinguishable under the common colour-vision
deficiencies); every line also has its own marker and dash style, and is labelled at
its end, so no legend has to be decoded. Uses matplotlib's object API (``Figure``)
with the Agg/SVG canvases, so no display and no global backend switch is needed.
"""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rtc_metrics.compare.leaderboard import Leaderboard
from rtc_metrics.compare.rows import LABELS, STRATEGIES, Row
from rtc_metrics.io import atomic_write

__all__ = [
    "OKABE_ITO",
    "FigureSpec",
    "bar_figures",
    "make_figures",
    "render",
    "save_figures",
    "step_figures",
    "vr_figures",
]

#: Okabe & Ito (2008), black last.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
#: The three metrics drawn, each with a fixed colour, marker and dash style.
SERIES = (
    ("pass@1", "#0072B2", "o", "-"),
    ("vr", "#D55E00", "s", "--"),
    ("rpass@1", "#009E73", "^", ":"),
)
#: Markers that tell models apart without colour, in the vr_figures.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Smallest vertical gap between two end labels, in percentage points.
_LABEL_GAP = 7.0


@dataclass
class FigureSpec:
    """One figure and where it goes."""

    #: File stem (no extension), safe for any file system.
    name: str
    #: One-sentence description (HTML caption and alt text).
    caption: str
    figure: Figure
    #: Rendered bytes per format, so --figures and --html draw each figure once.
    rendered: dict[str, bytes] = field(default_factory=dict)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _spread(ys: list[float], gap: float) -> list[float]:
    """Nudge label heights apart by at least ``gap``, keeping their order."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = list(ys)
    for prev, cur in itertools.pairwise(order):
        placed[cur] = max(placed[cur], placed[prev] + gap)
    return placed



def _label_line_ends(ax: Axes, ends: list[tuple[float, float, str, str]]) -> None:
    """Name each line at its right end (x, y, text, colour), nudged apart so labels never overlap."""
    for (x, _, text, colour), y in zip(ends, _spread([e[1] for e in ends], _LABEL_GAP), strict=True):
        ax.annotate(
            text,
            (x, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            color=colour,
            fontweight="bold",
            annotation_clip=False,
        )

def step_figures(board: Leaderboard) -> list[FigureSpec]:
    """Per model and task with two or more steps: pass@1, VR and Rpass@1 against step."""
    specs = []
    for model in sorted({r.model for r in board.rows}):
        for task in board.tasks:
            rows = _stepped(board, model, task)
            if len(rows) < 2:
                continue
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
            ends: list[tuple[float, float, str, str]] = []
            for key, colour, marker, dash in SERIES:
                points = [(r.step, r.metrics[key]) for r in rows if r.metrics[key].value is not None]
                if not points:
                    continue
                xs = [p[0] for p in points]
                ax.plot(
                    xs,
                    [100 * p[1].value for p in points],
                    color=colour,
                    marker=marker,
                    linestyle=dash,
                    linewidth=2,
                    markersize=5,
                )
                banded = [p for p in points if p[1].ci is not None]
                if len(banded) >= 2:
                    ax.fill_between(
                        [p[0] for p in banded],
                        [100 * p[1].low for p in banded],
                        [100 * p[1].high for p in banded],
                        color=colour,
                        alpha=0.15,
                        linewidth=0,
                    )
                last = points[-1]
                ends.append(
                    (last[0], 100 * last[1].value, f"{LABELS[key]} {100 * last[1].value:.0f}%", colour)
                )
            if not ends:
                continue
            _label_line_ends(ax, ends)
            steps = [r.step for r in rows]
            span = max(steps) - min(steps) or 1
            ref = _reference_vr(board, task, model)
            if ref is not None:
                ax.axhline(100 * ref[1], color="#555555", linestyle=(0, (6, 3)), linewidth=1)
                ax.annotate(
                    f"reference VR {100 * ref[1]:.0f}% ({ref[0]})",
                    (min(steps), 100 * ref[1]),
                    xytext=(2, 3),
                    textcoords="offset points",
                    color="#555555",
                    fontsize=8,
                )
            ax.set_xlim(min(steps) - 0.03 * span, max(steps) + 0.25 * span)
            ax.set_ylim(0, 105)
            ax.set_xlabel("training step")
            ax.set_ylabel("%  (shaded: 95% interval)")
            ax.set_title(f"{model} on {task}")
            ax.grid(alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
            specs.append(
                FigureSpec(
                    f"steps_{_slug(model)}_{_slug(task)}",
                    f"{model} on {task}: pass@1, VR and Rpass@1 by training step (shaded: 95% interval).",
                    fig,
                )
            )
    return specs


def _stepped(board: Leaderboard, model: str, task: str) -> list[Row]:
    return sorted(
        (r for r in board.rows if r.model == model and r.task == task and r.step is not None),
        key=lambda r: r.step,  # type: ignore[arg-type,return-value]
    )


def vr_figures(board: Leaderboard) -> list[FigureSpec]:
    """Per task with two or more stepped models (e.g. SFT strategies): VR against step,
    one line per model, labelled at its end; the reference VR as a dashed line."""
    specs = []
    for task in board.tasks:
        runs = [
            (m, rows)
            for m in sorted({r.model for r in board.rows})
            if len(rows := _stepped(board, m, task)) >= 2
        ]
        runs.sort(
            key=lambda mr: (STRATEGIES.index(s) if (s := mr[1][0].strategy) in STRATEGIES else 99, mr[0])
        )
        if len(runs) < 2:
            continue
        fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = fig.add_subplot()
        ends = []
        for i, (model, rows) in enumerate(runs):
            points = [(r.step, r.metrics["vr"]) for r in rows if r.metrics["vr"].value is not None]
            if not points:
                continue
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(
                [p[0] for p in points],
                [100 * p[1].value for p in points],
                color=colour,
                marker=MARKERS[i % len(MARKERS)],
                linewidth=2,
                markersize=5,
            )
            last = points[-1]
            ends.append((last[0], 100 * last[1].value, f"{model} {100 * last[1].value:.0f}%", colour))
        _label_line_ends(ax, ends)
        ref = _reference_vr(board, task, "")
        if ref is not None:
            ax.axhline(100 * ref[1], color="#555555", linestyle=(0, (6, 3)), linewidth=1)
            ax.annotate(
                f"reference VR {100 * ref[1]:.0f}% ({ref[0]})",
                (0, 100 * ref[1]),
                xycoords=("axes fraction", "data"),
                xytext=(4, 3),
                textcoords="offset points",
                color="#555555",
                fontsize=8,
            )
        steps = [r.step for _, rows in runs for r in rows]
        span = max(steps) - min(steps) or 1
        ax.set_xlim(min(steps) - 0.03 * span, max(steps) + 0.35 * span)
        ax.set_ylim(0, 105)
        ax.set_xlabel("training step")
        ax.set_ylabel("VR: valid traces (%)")
        ax.set_title(f"{task}: valid-trace rate during training")
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        specs.append(
            FigureSpec(f"vr_{_slug(task)}", f"{task}: VR against training step, one line per model.", fig)
        )
    return specs


def _reference_vr(board: Leaderboard, task: str, model: str) -> tuple[str, float] | None:
    """(label, VR) of the task's reference row, unless it belongs to ``model`` itself."""
    for row in board.rows:
        c = row.collapse
        if row.task == task and c is not None and c.is_reference and row.model != model:
            vr = row.value("vr")
            return None if vr is None else (row.label, vr)
    return None


def _final_rows(board: Leaderboard, task: str) -> list[Row]:
    """Each model's last checkpoint (or its only row) on ``task``, strategies in study order."""
    latest: dict[str, Row] = {}
    for row in board.rows:
        if row.task != task:
            continue
        best = latest.get(row.model)
        if best is None or (row.step or -1) > (best.step or -1):
            latest[row.model] = row

    def order(row: Row) -> tuple[bool, int, str]:
        is_ref = row.collapse is not None and row.collapse.is_reference
        rank = STRATEGIES.index(row.strategy) if row.strategy in STRATEGIES else len(STRATEGIES)
        return (not is_ref, rank, row.model.lower())

    return sorted(latest.values(), key=order)


def bar_figures(board: Leaderboard) -> list[FigureSpec]:
    """Per task with two or more models: pass@1, VR and Rpass@1 of each model's final row."""
    specs = []
    for task in board.tasks:
        rows = _final_rows(board, task)
        if len(rows) < 2:
            continue
        labels = [r.label for r in rows]
        colours = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(rows))]
        fig = Figure(figsize=(max(6.4, 1.0 + 0.9 * len(rows) * 3), 4.2), layout="constrained")
        axes = fig.subplots(1, 3, sharey=True)
        for ax, (key, *_style) in zip(axes, SERIES, strict=True):
            xs = range(len(rows))
            for x, row, colour in zip(xs, rows, colours, strict=True):
                est = row.metrics[key]
                if est.value is None:
                    ax.text(x, 2, "–\nnot reported", ha="center", va="bottom", fontsize=9)
                    continue
                err = None
                if est.ci is not None:
                    # max(0, ...): Wilson bounds at p = 0 or 1 can sit a rounding error past p.
                    err = [[max(0.0, 100 * (est.value - est.low))], [max(0.0, 100 * (est.high - est.value))]]
                ax.bar(
                    x,
                    100 * est.value,
                    color=colour,
                    edgecolor="black",
                    linewidth=0.6,
                    yerr=err,
                    capsize=3,
                    error_kw={"elinewidth": 1},
                )
                top = 100 * (est.high if est.ci is not None else est.value)
                ax.text(x, top + 1.5, f"{100 * est.value:.0f}", ha="center", va="bottom", fontsize=9)
            ax.set_xticks(
                list(xs),
                labels,
                rotation=30 if max(map(len, labels)) > 8 else 0,
                ha="right" if max(map(len, labels)) > 8 else "center",
            )
            ax.set_title(LABELS[key])
            ax.set_ylim(0, 112)
            ax.grid(axis="y", alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
        axes[0].set_ylabel("%  (bars: 95% interval)")
        fig.suptitle(f"{task}: final checkpoint of each model / strategy")
        specs.append(
            FigureSpec(
                f"bars_{_slug(task)}",
                f"{task}: pass@1, VR and Rpass@1 of each model's final checkpoint (bars: 95% interval).",
                fig,
            )
        )
    return specs


def make_figures(board: Leaderboard) -> list[FigureSpec]:
    """All figures for a leaderboard: VR by model, per-model step curves, then bar comparisons."""
    return vr_figures(board) + step_figures(board) + bar_figures(board)


def render(spec: FigureSpec, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes (SVG without a date, so reruns are identical)."""
    if fmt not in spec.rendered:
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else None
        spec.figure.savefig(buffer, format=fmt, dpi=150 if fmt == "png" else None, metadata=metadata)
        spec.rendered[fmt] = buffer.getvalue()
    return spec.rendered[fmt]


def save_figures(specs: list[FigureSpec], folder: str | Path) -> list[Path]:
    """Write each figure as ``<name>.png`` and ``<name>.svg`` (atomically); returns the paths."""
    folder = Path(folder)
    written = []
    for spec in specs:
        for fmt in ("png", "svg"):
            path = folder / f"{spec.name}.{fmt}"
            with atomic_write(path, "wb") as handle:
                handle.write(render(spec, fmt))
            written.append(path)
    return written
