"""The leaderboard: rows grouped per model (or checkpoint), one column group per task,
sorting, and the collapse flag against a reference row."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtc_metrics.compare.intervals import difference_interval
from rtc_metrics.compare.loading import Loaded
from rtc_metrics.compare.rows import METRICS, Collapse, Row, split_checkpoint
from rtc_metrics.decompose import Decomposition, decompose
from rtc_metrics.io import InputError

__all__ = [
    "SORT_COLUMNS",
    "Change",
    "Leaderboard",
    "build_leaderboard",
    "decompose_pair",
    "flag_collapse",
    "parse_reference",
]

#: Columns accepted by --sort (optionally as TASK:COLUMN). Metrics sort high to low,
#: names and steps ascending; missing values always go last.
SORT_COLUMNS = ("model", "step", "task", "n", *METRICS, "vr_drop")


@dataclass
class Leaderboard:
    """Rows in display order plus what the tables need to lay them out."""

    #: Long form: one row per (model, step, task), in table order.
    rows: list[Row]
    #: Task column groups, in order.
    tasks: list[str]
    #: (model, step) of each table line, in order.
    lines: list[tuple[str, int | None]]
    #: Reference label when --reference was given.
    reference: str | None = None
    #: Statements about the inputs and choices made (shown under every table).
    notes: list[str] = field(default_factory=list)
    #: Every input file read.
    sources: list[str] = field(default_factory=list)

    def cell(self, line: tuple[str, int | None], task: str) -> Row | None:
        """The row of one table line for one task, if that model was run on it."""
        return self._index.get((*line, task))

    def __post_init__(self) -> None:
        self._index = {(r.model, r.step, r.task): r for r in self.rows}


def parse_reference(spec: str) -> tuple[str, int | None]:
    """ "MODEL" or "MODEL@STEP" (the last "@" followed by digits is the step)."""
    model, sep, step = spec.rpartition("@")
    if sep and step.isdigit() and model:
        return model, int(step)
    return spec, None


def _reference_rows(rows: list[Row], spec: str, flag: str = "--reference") -> dict[str, Row]:
    model, step = parse_reference(spec)
    # The label as shown, the recorded name, or the recorded name without its checkpoint folder.
    mine = [r for r in rows if model in (r.model, r.model_name, split_checkpoint(r.model_name)[0])]
    if not mine:
        models = sorted({r.model for r in rows})
        raise InputError(f"{flag} {spec!r}: no such model; models here: {', '.join(models)}")
    if step is not None:
        mine = [r for r in mine if r.step == step]
        if not mine:
            raise InputError(f"{flag} {spec!r}: model {model!r} has no step {step}")
    by_task: dict[str, Row] = {}
    # Without a step: the un-stepped row (a base model) if any, else the earliest step.
    for row in sorted(mine, key=lambda r: (r.step is not None, r.step or 0)):
        by_task.setdefault(row.task, row)
    return by_task


def flag_collapse(rows: list[Row], reference: str, notes: list[str]) -> str:
    """Set ``row.collapse`` on every row of a task the reference was run on.

    Drop = VR(reference) - VR(row) with Newcombe's 95% interval (see intervals.py);
    flagged when the interval lies wholly above 0. Returns the reference label.
    """
    refs = _reference_rows(rows, reference)
    label = next(iter(refs.values())).label
    for row in rows:
        ref = refs.get(row.task)
        if ref is None:
            continue
        if row is ref:
            row.collapse = Collapse(reference=ref.label, is_reference=True)
            continue
        diff = difference_interval(ref.metrics["vr"], row.metrics["vr"])
        row.collapse = Collapse(ref.label, False, *(diff or (None, None, None)))
        row.decomposition = _decompose(ref, row)
    missing = sorted({r.task for r in rows} - set(refs))
    if missing:
        notes.append(f"reference {label} has no row for {', '.join(missing)}: no collapse flag there")
    return label


def _decompose(before: Row, after: Row) -> Decomposition | None:
    """The accuracy change from ``before`` to ``after``, split; None without per-class counts."""
    if before.classes is None or after.classes is None or not before.classes.n or not after.classes.n:
        return None
    return decompose(before.classes, after.classes)


@dataclass
class Change:
    """One task's accuracy change between two rows (``rtc compare --decompose A B``)."""

    task: str
    before: Row
    after: Row
    #: None when either row lacks per-class counts (see :attr:`reason`).
    decomposition: Decomposition | None
    reason: str = ""

    def sentence(self) -> str:
        head = f"{self.task}: {self.before.label} → {self.after.label}: "
        return head + (self.decomposition.sentence() if self.decomposition else self.reason)


def decompose_pair(rows: list[Row], before: str, after: str) -> list[Change]:
    """Per task that both MODEL[@STEP] specs were run on, the split accuracy change."""
    a, b = _reference_rows(rows, before, "--decompose"), _reference_rows(rows, after, "--decompose")
    changes = []
    for task in sorted(set(a) & set(b)):
        d = _decompose(a[task], b[task])
        reason = ""
        if d is None:
            lacking = [r.label for r in (a[task], b[task]) if r.classes is None or not r.classes.n]
            reason = (
                f"no per-class counts for {', '.join(lacking)} (needs a samples file, or a results file "
                "with rtc_<class>_correct, written by rtc tasks since the diagnostics release)"
            )
        changes.append(Change(task, a[task], b[task], d, reason))
    if not changes:
        raise InputError(f"--decompose {before} {after}: the two models share no task")
    return changes


def _sort_value(row: Row | None, column: str) -> object:
    if row is None:
        return None
    if column == "vr_drop":
        return None if row.collapse is None else row.collapse.drop
    if column == "n":
        return row.n
    return row.value(column)


def _parse_sort(spec: str, tasks: list[str]) -> tuple[str | None, str]:
    task, sep, column = spec.rpartition(":")
    if not sep:
        task, column = None, spec
    column = column.lower() if column.lower() in SORT_COLUMNS else column
    if column not in SORT_COLUMNS:
        raise InputError(
            f"--sort {spec!r}: unknown column; choose from {', '.join(SORT_COLUMNS)} (or TASK:COLUMN)"
        )
    if task is not None and task not in tasks:
        raise InputError(f"--sort {spec!r}: no task {task!r}; tasks here: {', '.join(tasks)}")
    return task, column


def build_leaderboard(loaded: Loaded, reference: str | None = None, sort: str | None = None) -> Leaderboard:
    """Lay out rows: lines sorted by model then step unless ``sort`` says otherwise
    (``COLUMN`` uses the first task's value, ``TASK:COLUMN`` a given task's)."""
    rows = list(loaded.rows)
    notes = list(loaded.notes)
    tasks = sorted({r.task for r in rows})
    ref_label = flag_collapse(rows, reference, notes) if reference else None
    index = {(r.model, r.step, r.task): r for r in rows}
    lines = sorted(
        {(r.model, r.step) for r in rows},
        key=lambda ln: (ln[0].lower(), ln[0], ln[1] is not None, ln[1] or 0),
    )
    if sort:
        task, column = _parse_sort(sort, tasks)
        if column in ("model", "task"):
            pass  # lines are in model order already; a line's tasks are always in task order
        elif column == "step":
            lines.sort(key=lambda ln: (ln[1] is None, ln[1] or 0))
        else:

            def key(line: tuple[str, int | None]) -> tuple[bool, float]:
                value = _sort_value(index.get((*line, task or tasks[0])), column)
                # Missing values last; higher first for metrics and drops.
                return (value is None, -float(value) if value is not None else 0.0)  # type: ignore[arg-type]

            lines.sort(key=key)
    ordered = [index[(*line, t)] for line in lines for t in tasks if (*line, t) in index]
    return Leaderboard(ordered, tasks, lines, ref_label, notes, list(loaded.sources))
