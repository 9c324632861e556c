"""Classify one generation as valid, empty, truncated or missing, and split off its answer.

The rules (the study's definitions, made exact; matching is exact and case-sensitive):

1. If a closing delimiter occurs, the first trace runs from just after the first opening
   delimiter that precedes the first closing delimiter (or from the start of the output
   when none precedes it) to that first close. A blank trace is ``empty``, otherwise
   ``valid``. The answer is the text after the LAST closing delimiter, stripped, with the
   format's answer wrappers removed.
2. Else, if an opening delimiter occurs or the prompt pre-opened the trace: ``truncated``,
   answer ``""``.
3. Else ``missing``; the answer is the whole output, stripped.

Blank means nothing is left after removing Unicode whitespace and format characters
(category Cf: zero-width spaces and joiners, BOM, direction marks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import regex

from rtc_metrics.formats import TraceFormat, get_format

__all__ = [
    "Anomaly",
    "ParsedTrace",
    "TraceStatus",
    "is_blank",
    "parse_trace",
    "prompt_opens_trace",
]


class TraceStatus(str, Enum):
    """The structural class of one generation; exactly one applies."""

    VALID = "valid"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value


class Anomaly(str, Enum):
    """Irregularities that do not change the status but are worth reading."""

    #: More than one complete trace block in the output.
    MULTIPLE_BLOCKS = "multiple_blocks"
    #: A closing delimiter with no opening delimiter (and no pre-opened prompt) before it,
    #: or more closes than opens.
    STRAY_CLOSE = "stray_close"
    #: Non-blank text before the trace's opening delimiter.
    TEXT_BEFORE_TRACE = "text_before_trace"
    #: The trace was opened again while already open (including an opener written by the
    #: model although the prompt had pre-opened the trace).
    REPEATED_OPEN = "repeated_open"
    #: A new trace opened after the last close and never closed.
    TRAILING_OPEN = "trailing_open"
    #: The answer segment is blank.
    NO_ANSWER = "no_answer"
    #: A truncated generation that used up its token budget (``max_gen_toks``). Never set by
    #: :func:`parse_trace`; added by :func:`rtc_metrics.diagnostics.classify_budget`.
    TRUNCATED_BY_BUDGET = "truncated_by_budget"
    #: A truncated generation that ended before its budget: EOS or a stop string fired while
    #: the trace was open. Added by :func:`rtc_metrics.diagnostics.classify_budget`.
    STOPPED_INSIDE_TRACE = "stopped_inside_trace"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ParsedTrace:
    """One generation, split into trace and answer."""

    #: valid | empty | truncated | missing.
    status: TraceStatus
    #: Trace text without delimiters, stripped ("" when missing).
    reasoning: str
    #: Answer segment, stripped, answer wrappers removed ("" when truncated).
    answer: str
    #: Irregularities found, as :class:`Anomaly` values (a tuple of str enums).
    anomalies: tuple[Anomaly, ...] = ()
    #: Whether the trace was treated as opened by the prompt.
    prefixed: bool = False

    @property
    def is_valid(self) -> bool:
        """True for a closed, non-blank trace."""
        return self.status is TraceStatus.VALID

    @property
    def has_answer(self) -> bool:
        """True when the answer segment is not blank."""
        return not is_blank(self.answer)


# Python's whitespace (what str.strip removes; every such character is below U+3001)
# plus format characters (category Cf). The first character outside it is visible.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_VISIBLE = regex.compile(f"[^{regex.escape(_WHITESPACE)}\\p{{Cf}}]")


def is_blank(text: str) -> bool:
    """True when ``text`` holds only Unicode whitespace and format (Cf) characters."""
    # Stops at the first visible character, which is almost always the first one.
    return _VISIBLE.search(text) is None


#: After this many false anchor hits, hand the rest of the search to str.find.
_ANCHOR_MISSES = 8


class _Delimiter:
    """Finds one delimiter that may have several spellings.

    Delimiters start with a character that is rare in prose (``<``, ``[``), so a single
    spelling is found by memchr-speed ``str.find`` of that first character plus a
    ``startswith`` check. That is several times faster than ``str.find`` of the whole
    delimiter, whose skip table degrades on text full of the delimiter's letters
    ("think"). Text dense in the anchor character falls back to ``str.find``.
    """

    __slots__ = ("_anchor", "_regex", "_single", "_size")

    def __init__(self, spellings: tuple[str, ...]) -> None:
        self._single = spellings[0] if len(spellings) == 1 else None
        self._anchor = spellings[0][0]
        self._size = len(spellings[0])
        # Longest first so a spelling that extends another wins at the same position.
        ordered = sorted(spellings, key=len, reverse=True)
        self._regex = re.compile("|".join(re.escape(s) for s in ordered))

    def _find_single(self, text: str, start: int, stop: int) -> int:
        delim, anchor = self._single, self._anchor
        pos = text.find(anchor, start, stop)
        misses = 0
        while pos >= 0:
            if text.startswith(delim, pos, stop):
                return pos
            misses += 1
            if misses == _ANCHOR_MISSES:
                return text.find(delim, pos + 1, stop)
            pos = text.find(anchor, pos + 1, stop)
        return -1

    def find(self, text: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
        """(start, end) of the first occurrence in text[start:end], or (-1, -1)."""
        stop = len(text) if end is None else end
        if self._single is not None:
            pos = self._find_single(text, start, stop)
            return (pos, pos + self._size) if pos >= 0 else (-1, -1)
        m = self._regex.search(text, start, stop)
        return (m.start(), m.end()) if m else (-1, -1)

    def rfind(self, text: str) -> tuple[int, int]:
        """(start, end) of the last occurrence, or (-1, -1)."""
        if self._single is not None:
            pos = text.rfind(self._single)
            return (pos, pos + self._size) if pos >= 0 else (-1, -1)
        last = (-1, -1)
        for m in self._regex.finditer(text):
            last = (m.start(), m.end())
        return last

    def count(self, text: str) -> int:
        """Number of non-overlapping occurrences."""
        if self._single is not None:
            return text.count(self._single)
        return sum(1 for _ in self._regex.finditer(text))


@lru_cache(maxsize=256)
def _delimiters(fmt: TraceFormat) -> tuple[_Delimiter, _Delimiter]:
    return _Delimiter(fmt.opens), _Delimiter(fmt.closes)


def prompt_opens_trace(prompt: str, fmt: TraceFormat | str) -> bool:
    """True when ``prompt`` ends inside an open trace.

    That is, the prompt's last opening delimiter comes after its last closing one
    (a prompt ending ``<think>\\n`` is open; ``<think>\\n\\n</think>\\n\\n`` is not).
    """
    opener, closer = _delimiters(get_format(fmt))
    last_open = opener.rfind(prompt)[0]
    return last_open >= 0 and last_open > closer.rfind(prompt)[0]


def _strip_wrappers(answer: str, fmt: TraceFormat) -> str:
    if not fmt.answer_wrappers:
        return answer
    for prefix, _ in fmt.answer_wrappers:
        if answer.startswith(prefix):
            answer = answer[len(prefix) :]
            break
    for _, suffix in fmt.answer_wrappers:
        if suffix and answer.endswith(suffix):
            answer = answer[: -len(suffix)]
            break
    return answer.strip()


def parse_trace(text: str, fmt: TraceFormat | str, prompt: str | None = None) -> ParsedTrace:
    """Classify ``text`` (one model output) under ``fmt`` (a TraceFormat or registry name).

    ``prompt`` is the exact prompt the output was generated from. When given, it decides
    whether the trace was pre-opened (its last opening delimiter after its last closing
    one); when omitted, ``fmt.prefixed`` decides.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_trace expects the generated text as str, got {type(text).__name__}")
    fmt = get_format(fmt)
    prefixed = fmt.prefixed if prompt is None else prompt_opens_trace(prompt, fmt)
    opener, closer = _delimiters(fmt)
    anomalies: list[Anomaly] = []

    close_start, close_end = closer.find(text)
    if close_start >= 0:
        open_start, open_end = opener.find(text, 0, close_start)
        opened_in_text = open_start >= 0
        trace_start = open_end if opened_in_text else 0
        reasoning = text[trace_start:close_start].strip()
        status = TraceStatus.EMPTY if is_blank(reasoning) else TraceStatus.VALID

        if opened_in_text:
            if prefixed or opener.find(text, trace_start, close_start)[0] >= 0:
                anomalies.append(Anomaly.REPEATED_OPEN)
            # Under a pre-opened prompt, text before the opener is inside the trace.
            if not prefixed and not is_blank(text[:open_start]):
                anomalies.append(Anomaly.TEXT_BEFORE_TRACE)
        # Everything after the first close is usually short: scan only that part for
        # further blocks, and count delimiters over the whole text only when needed.
        tail = text[close_end:]
        last_close_end = closer.rfind(tail)[1]
        more_closes = last_close_end >= 0
        stray = not opened_in_text and not prefixed
        if more_closes and not stray:
            stray = closer.count(text) > opener.count(text) + (0 if opened_in_text else 1)
        if stray:
            anomalies.append(Anomaly.STRAY_CLOSE)
        if more_closes:
            next_open = opener.find(tail)
            if next_open[0] >= 0 and closer.find(tail, next_open[1])[0] >= 0:
                anomalies.append(Anomaly.MULTIPLE_BLOCKS)
        answer_start = last_close_end if more_closes else 0
        if opener.find(tail, answer_start)[0] >= 0:
            anomalies.append(Anomaly.TRAILING_OPEN)
        answer = _strip_wrappers(tail[answer_start:].strip(), fmt)
        if is_blank(answer):
            anomalies.append(Anomaly.NO_ANSWER)
        return ParsedTrace(status, reasoning, answer, tuple(anomalies), prefixed)

    open_start, open_end = opener.find(text)
    if open_start >= 0 or prefixed:
        if open_start >= 0:
            if prefixed or opener.find(text, open_end)[0] >= 0:
                anomalies.append(Anomaly.REPEATED_OPEN)
            if not prefixed and not is_blank(text[:open_start]):
                anomalies.append(Anomaly.TEXT_BEFORE_TRACE)
            reasoning = text[open_end:]
        else:
            reasoning = text
        anomalies.append(Anomaly.NO_ANSWER)
        return ParsedTrace(TraceStatus.TRUNCATED, reasoning.strip(), "", tuple(anomalies), prefixed)

    answer = text.strip()
    if is_blank(answer):
        anomalies.append(Anomaly.NO_ANSWER)
    return ParsedTrace(TraceStatus.MISSING, "", answer, tuple(anomalies), prefixed)
