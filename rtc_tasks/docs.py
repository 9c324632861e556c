"""Document processing and scoring for the rtc_* tasks.

Every ``process_docs`` turns its dataset's records into the study's shape,
``{"prompt": str, "answer": str}`` (plus a few extras), and accepts records that are
already in that shape, so ``--metadata '{"rtc_data_files": "subset.jsonl"}'`` works with
either the hub dataset's own fields or the study's ``{"prompt", "answer"}`` files.

``process_results`` functions receive only the answer segment of each generation (see
:class:`rtc_tasks.task.RTCTask`) and return the task's answer metric, ``exact_match``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from rtc_tasks.answers import (
    extract_choice,
    extract_integer,
    extract_number,
    math_equal,
    numbers_equal,
)

__all__ = [
    "LETTERS",
    "process_aime",
    "process_chemistry",
    "process_gpqa",
    "process_gsm8k",
    "process_math500",
    "results_choice",
    "results_integer",
    "results_math",
    "results_number",
]

LETTERS = "ABCDEFGHIJ"


class DocError(ValueError):
    """A record that none of the accepted schemas describes."""


def _field(doc: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in doc and doc[name] is not None:
            return doc[name]
    return None


def _require(doc: dict[str, Any], task: str, value: Any, fields: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DocError(
            f"{task}: a record has none of the fields {fields} (its fields: {', '.join(sorted(doc))}); "
            'records must use the dataset\'s own fields or the study\'s {"prompt", "answer"}'
        )
    return value


def _map(dataset: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Apply ``fn`` to a datasets.Dataset (or a list of dicts, for tests)."""
    if hasattr(dataset, "map"):
        return dataset.map(fn, remove_columns=list(dataset.column_names))
    return [fn(doc) for doc in dataset]


# --- GSM8K ----------------------------------------------------------------------------
def _gsm8k_doc(doc: dict[str, Any]) -> dict[str, Any]:
    prompt = _require(doc, "rtc_gsm8k", _field(doc, "prompt", "question"), "'prompt'/'question'")
    raw = _require(doc, "rtc_gsm8k", _field(doc, "answer", "target"), "'answer'")
    raw = str(raw)
    # The hub's answer is a worked solution ending "#### 72"; the study's is "72".
    gold = extract_number(raw.split("####")[-1]) if "####" in raw else extract_number(raw)
    if gold is None:
        raise DocError(f"rtc_gsm8k: the gold answer {raw[-60:]!r} holds no number")
    return {"prompt": str(prompt), "answer": gold}


def process_gsm8k(dataset: Any) -> Any:
    """GSM8K (``question``/``answer`` with ``#### N``) or study records -> prompt, numeric answer."""
    return _map(dataset, _gsm8k_doc)


# --- multiple choice ------------------------------------------------------------------
def _mcq_prompt(question: str, options: list[str]) -> str:
    # The study's layout: the question, a blank line, then "A: text" per option.
    lines = [f"{LETTERS[i]}: {str(text).strip()}" for i, text in enumerate(options)]
    return f"{question.strip()}\n\n" + "\n".join(lines)


def _letter_of(answer: Any, labels: list[str], options: list[str]) -> str | None:
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options):
        return LETTERS[answer]
    text = str(answer).strip()
    if text in labels:
        return LETTERS[labels.index(text)]
    if len(text) == 1 and text.upper() in LETTERS[: max(len(options), 1)]:
        return text.upper()
    stripped = [str(o).strip() for o in options]
    if text in stripped:
        return LETTERS[stripped.index(text)]
    return None


def _chemistry_doc(doc: dict[str, Any]) -> dict[str, Any]:
    if "prompt" in doc and isinstance(doc["prompt"], str) and "choices" not in doc:
        # Study records: the prompt already lists the options; the answer is the letter.
        letter = str(_require(doc, "rtc_chemistry", doc.get("answer"), "'answer'")).strip().upper()
        if len(letter) != 1 or letter not in LETTERS:
            raise DocError(f"rtc_chemistry: study record answer must be one option letter, got {letter!r}")
        n = sum(
            1
            for line in doc["prompt"].split("\n")
            if len(line) > 2 and line[1:3] == ": " and line[0] in LETTERS
        )
        return {"prompt": doc["prompt"], "answer": letter, "n_choices": n or 4}
    # Hub records (SciKnowEval, assumed schema): question, choices {text, label}, answerKey.
    question = _require(doc, "rtc_chemistry", _field(doc, "question"), "'question'/'prompt'")
    choices = _require(doc, "rtc_chemistry", _field(doc, "choices", "options"), "'choices'")
    if isinstance(choices, dict):
        texts = list(choices.get("text") or [])
        labels = [str(x) for x in (choices.get("label") or [])]
    else:
        texts, labels = list(choices), []
    answer = _require(doc, "rtc_chemistry", _field(doc, "answerKey", "answer"), "'answerKey'/'answer'")
    letter = _letter_of(answer, labels, texts)
    if letter is None:
        raise DocError(f"rtc_chemistry: answer {answer!r} matches no option label or text")
    return {"prompt": _mcq_prompt(str(question), texts), "answer": letter, "n_choices": len(texts)}


def _is_chemistry_l3_mcq(doc: dict[str, Any]) -> bool:
    """Keep SciKnowEval chemistry, level L3, multiple-choice records (study records pass)."""
    if "prompt" in doc and "choices" not in doc:
        return True
    domain = str(doc.get("domain") or "chemistry").lower()
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    level = str(details.get("level") or doc.get("level") or "L3").upper()
    kind = str(doc.get("type") or "mcq").lower()
    return domain == "chemistry" and level == "L3" and kind.startswith("mcq")


def process_chemistry(dataset: Any) -> Any:
    """SciKnowEval chemistry L3 MCQ (hub) or study records -> prompt with lettered options, letter."""
    if hasattr(dataset, "filter"):
        dataset = dataset.filter(_is_chemistry_l3_mcq)
    else:
        dataset = [d for d in dataset if _is_chemistry_l3_mcq(d)]
    return _map(dataset, _chemistry_doc)


def _gpqa_doc(doc: dict[str, Any]) -> dict[str, Any]:
    if "prompt" in doc and "Question" not in doc:
        return _chemistry_doc(doc)
    question = _require(doc, "rtc_gpqa_diamond", _field(doc, "Question"), "'Question'/'prompt'")
    correct = _require(doc, "rtc_gpqa_diamond", _field(doc, "Correct Answer"), "'Correct Answer'")
    wrong = [doc.get(f"Incorrect Answer {i}") for i in (1, 2, 3)]
    options = [str(correct), *(str(w) for w in wrong if w is not None)]
    # Deterministic shuffle seeded by the question text: the same order on every run.
    seed = int(hashlib.sha256(str(question).encode()).hexdigest()[:16], 16)
    order = list(range(len(options)))
    random.Random(seed).shuffle(order)
    shuffled = [options[i] for i in order]
    return {
        "prompt": _mcq_prompt(str(question), shuffled),
        "answer": LETTERS[order.index(0)],
        "n_choices": len(options),
    }


def process_gpqa(dataset: Any) -> Any:
    """GPQA (``Question``, ``Correct Answer``, ``Incorrect Answer 1-3``) or study records."""
    return _map(dataset, _gpqa_doc)


# --- MATH-500 and AIME -----------------------------------------------------------------
def _math_doc(doc: dict[str, Any], task: str) -> dict[str, Any]:
    prompt = _require(
        doc, task, _field(doc, "prompt", "problem", "Problem", "question"), "'problem'/'prompt'"
    )
    answer = _require(doc, task, _field(doc, "answer", "Answer"), "'answer'")
    return {"prompt": str(prompt), "answer": str(answer).strip()}


def process_math500(dataset: Any) -> Any:
    """MATH-500 (``problem``, ``answer``) or study records."""
    return _map(dataset, lambda d: _math_doc(d, "rtc_math500"))


def process_aime(dataset: Any) -> Any:
    """AIME (``problem``/``Problem``, ``answer``/``Answer``) or study records."""
    return _map(dataset, lambda d: _math_doc(d, "rtc_aime"))


# --- scoring: results[0] is the answer segment of the doc's (first) generation ----------
def results_number(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match for a numeric answer (GSM8K)."""
    return {"exact_match": float(numbers_equal(extract_number(results[0]), doc["answer"]))}


def results_integer(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match for an integer answer (AIME)."""
    gold = extract_integer(str(doc["answer"]))
    return {"exact_match": float(gold is not None and extract_integer(results[0]) == gold)}


def results_choice(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match for an option letter (chemistry, GPQA)."""
    letters = LETTERS[: int(doc.get("n_choices") or 4)]
    return {"exact_match": float(extract_choice(results[0], letters) == doc["answer"])}


def results_math(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match as mathematical equivalence (math-verify) with the gold answer (MATH-500)."""
    return {"exact_match": float(bool(results[0].strip()) and math_equal(results[0], doc["answer"]))}
