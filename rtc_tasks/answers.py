"""Answer extraction and comparison for the rtc_* tasks.

These functions only ever see the answer segment (the text after the trace), because
:class:`rtc_tasks.task.RTCTask` hands the task's scoring nothing else.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "extract_boxed",
    "extract_choice",
    "extract_integer",
    "extract_number",
    "math_equal",
    "numbers_equal",
]

_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\$?\s?\.\d+"
_ANSWER_IS = re.compile(rf"answer is[:\s]*\**\s*\(?({_NUMBER})", re.IGNORECASE)
_HASHES = re.compile(rf"####\s*({_NUMBER})")
_ANY_NUMBER = re.compile(_NUMBER)


def extract_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``), braces balanced; None if absent."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i].strip()
    return None  # unbalanced: the output was cut off inside the box


def _clean_number(raw: str) -> str | None:
    cleaned = raw.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    # Canonical text: "72.00" and "72" compare equal, "-0" becomes "0".
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_number(text: str) -> str | None:
    r"""The final numeric answer in ``text``, canonicalised ("1,000.50" -> "1000.5").

    Priority: "The answer is N", then ``\boxed{N}``, then "#### N", then the last number.
    None when no number is present.
    """
    for pattern in (_ANSWER_IS,):
        matches = pattern.findall(text)
        if matches:
            number = _clean_number(matches[-1])
            if number is not None:
                return number
    boxed = extract_boxed(text)
    if boxed is not None:
        inner = _ANY_NUMBER.findall(boxed.replace("\\!", "").replace("{,}", ","))
        if inner:
            number = _clean_number(inner[-1])
            if number is not None:
                return number
    hashes = _HASHES.findall(text)
    candidates = hashes or _ANY_NUMBER.findall(text)
    for raw in reversed(candidates):
        number = _clean_number(raw)
        if number is not None:
            return number
    return None


def numbers_equal(predicted: str | None, gold: str | None) -> bool:
    """True when both canonical numbers are present and numerically equal."""
    if predicted is None or gold is None:
        return False
    try:
        return Decimal(predicted) == Decimal(gold)
    except InvalidOperation:
        return False


def extract_integer(text: str) -> str | None:
    r"""An AIME-style integer answer: ``\boxed{N}`` first, else "answer is N", else the last integer."""
    boxed = extract_boxed(text)
    if boxed is not None:
        found = re.findall(r"-?\d+", boxed.replace(",", ""))
        if found:
            return str(int(found[-1]))
    number = extract_number(text)
    if number is None or "." in number:
        return None
    return number


_CHOICE_PATTERNS = (
    # "The answer is (C)", "answer: C", "Answer is **C**"
    r"answer(?:\s+is)?\s*[:：]?\s*\**\s*\(?\s*([{L}])\b",
    # "\boxed{C}" (handled separately), "(C)" or "C." or "C)" alone on the first line
    r"^\s*\**\(?([{L}])\)?[.:)]?\**\s*$",
    r"^\s*\**\(?([{L}])[.:)]\s",
)


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    r"""The option letter chosen in ``text`` (an answer segment); None when none is found.

    Priority: ``\boxed{X}``, "answer is X" / "Answer: X" (last one), an answer segment that
    is just the letter ("C", "(C)", "C."), a first line starting "C." / "C)", and finally
    the only option letter standing alone anywhere (ambiguous text gives None).
    """
    boxed = extract_boxed(text)
    if boxed is not None:
        inner = re.sub(r"\\text\{([^}]*)\}", r"\1", boxed).strip().strip("()").strip()
        if len(inner) == 1 and inner.upper() in letters:
            return inner.upper()
    klass = re.escape(letters)
    answer_is = re.compile(_CHOICE_PATTERNS[0].format(L=klass), re.IGNORECASE)
    found = answer_is.findall(text)
    if found:
        return found[-1].upper()
    first_line = text.strip().split("\n", 1)[0] if text.strip() else ""
    for pattern in _CHOICE_PATTERNS[1:]:
        m = re.match(pattern.format(L=klass), first_line)
        if m:
            return m.group(1)
    standalone = set(re.findall(rf"(?<![\w]){f'[{klass}]'}(?![\w])", text))
    return standalone.pop() if len(standalone) == 1 else None


def math_equal(predicted: str, gold: str) -> bool:
    r"""Mathematical equivalence of an answer segment and a gold answer (math-verify).

    The gold is wrapped in ``$...$`` when it carries no delimiters so LaTeX such as
    ``\frac{1}{2}`` parses. Needs the ``math-verify`` package (``pip install rtc-eval[math]``).
    """
    try:
        from math_verify import parse, verify
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rtc_math500 scores with math-verify; install it with `pip install 'rtc-eval[math]'`"
        ) from exc
    gold_text = gold if "$" in gold or "\\boxed" in gold else f"${gold}$"
    gold_parsed = parse(gold_text)
    pred_parsed = parse(predicted)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed))
