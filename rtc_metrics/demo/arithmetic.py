"""Synthetic arithmetic problems with step-by-step column traces (the demo's task)."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Problem", "make_problems"]


@dataclass(frozen=True)
class Problem:
    """One addition or subtraction problem."""

    #: The user's question, e.g. "What is 47 + 85?".
    prompt: str
    #: The result as text, e.g. "132".
    answer: str
    #: Column-by-column working, least significant digit first (the carry added as
    #: "+1", a borrow marked "b"), then the result.
    trace: str

    @property
    def response(self) -> str:
        """The answer sentence the model is trained to write after its trace."""
        return f"The answer is {self.answer}."


def _addition_trace(a: int, b: int) -> str:
    lines, carry = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        total = x + y + carry
        extra = f"+{carry}" if carry else ""
        carry = total // 10
        lines.append(f"{x}+{y}{extra}={total}")
    lines.append(f"so {a + b}")
    return "\n".join(lines)


def _subtraction_trace(a: int, b: int) -> str:
    lines, borrow = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    for i in range(len(da)):
        x = int(da[i]) - borrow
        y = int(db[i]) if i < len(db) else 0
        if x < y:
            lines.append(f"{x + 10}-{y}={x + 10 - y} b")
            borrow = 1
        else:
            lines.append(f"{x}-{y}={x - y}")
            borrow = 0
    lines.append(f"so {a - b}")
    return "\n".join(lines)


def make_problems(n: int, seed: int, max_digits: int = 2) -> list[Problem]:
    """``n`` distinct-seeded problems: a + b or a - b (a ≥ b), 1 to ``max_digits`` digits."""
    rng = random.Random(seed)
    problems = []
    for _ in range(n):
        a = rng.randint(10, 10**max_digits - 1)
        b = rng.randint(1, 10**max_digits - 1)
        if rng.random() < 0.5:
            problems.append(Problem(f"What is {a} + {b}?", str(a + b), _addition_trace(a, b)))
        else:
            a, b = max(a, b), min(a, b)
            problems.append(Problem(f"What is {a} - {b}?", str(a - b), _subtraction_trace(a, b)))
    return problems


def lm_eval_dataset(rtc_toy_n: int = 200, rtc_toy_seed: int = 1234, **_: object):
    """The ``rtc_toy_arithmetic`` task's data: a seeded test split of ``{"prompt", "answer"}``.

    lm-eval calls this (``custom_dataset``) with the task metadata as keyword arguments, so
    ``--metadata '{"rtc_toy_n": 500}'`` changes the size; other keys are ignored.
    """
    from datasets import Dataset, DatasetDict

    problems = make_problems(int(rtc_toy_n), seed=int(rtc_toy_seed))
    return DatasetDict({"test": Dataset.from_list([{"prompt": p.prompt, "answer": p.answer} for p in problems])})
