"""Pull the program out of a generation's ANSWER segment (never out of the reasoning trace)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rtc_metrics.formats import TraceFormat
from rtc_metrics.parsing import parse_trace

__all__ = ["PYTHON_TAGS", "answer_segment", "extract_program", "fenced_blocks"]

#: Info strings that mark a fenced block as Python ("" = untagged).
PYTHON_TAGS = frozenset({"", "python", "python3", "py", "py3"})

# An opening fence at a line start (up to 3 spaces, ``` or ~~~, 3+), an info string, then the
# body up to a closing fence of the same character and at least the same length, or the end
# of the text (an answer cut off mid-block still yields its code).
_FENCE = re.compile(
    r"^[ ]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)"
    r"(?:^[ ]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """All fenced blocks as ``(language tag in lower case, body)``, in order."""
    blocks = []
    for match in _FENCE.finditer(text):
        info = match.group("info").strip().split(maxsplit=1)
        tag = info[0].lower().lstrip("{.").rstrip("}") if info else ""
        blocks.append((tag, match.group("body")))
    return blocks


def _defines(body: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", body, re.MULTILINE) is not None


def extract_program(answer: str, entry_points: Sequence[str] = ()) -> str:
    """The code in ``answer`` (an answer segment, not a whole generation).

    Fenced blocks win over raw text. Among fenced blocks, Python-tagged or untagged ones
    count (others only when there is nothing else); of those, the LAST block that defines one
    of ``entry_points`` at top level is taken (a model that revises its solution puts the
    final version last; usage examples and test blocks define no entry point); when no block
    defines one, the longest block. Without any fence the whole answer is the program
    (leading blank lines and trailing whitespace removed, indentation kept). Returns ``""``
    when the answer is blank.
    """
    blocks = fenced_blocks(answer)
    if not blocks:
        # Keep the first line's indentation: a bare completion continues the prompt's body.
        return re.sub(r"\A(?:[ \t]*\n)+", "", answer).rstrip()
    python = [body for tag, body in blocks if tag in PYTHON_TAGS] or [body for _, body in blocks]
    defining = [body for body in python if any(_defines(body, name) for name in entry_points)]
    chosen = defining[-1] if defining else max(python, key=len)
    return chosen.strip("\n")


def answer_segment(generation: str, fmt: TraceFormat | str, prompt: str | None = None) -> str:
    """The answer segment of a raw generation under ``fmt`` ("" for a truncated trace)."""
    return parse_trace(generation, fmt, prompt=prompt).answer
