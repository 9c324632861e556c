"""EvalPlus record handling on hand-written fixtures in the assumed hub schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtc_metrics.code import build_program, problem_from_record
from rtc_metrics.io import InputError

FIXTURES = Path(__file__).parent / "fixtures"
P = 'def f():\n    """Return something."""\n'


def _records(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_humaneval_records_normalise():
    problems = [problem_from_record(r) for r in _records("humanevalplus_sample.jsonl")]
    assert [p.kind for p in problems] == ["humaneval"] * 4
    assert problems[0].task_id == "HumanEval/0" and problems[0].entry_points == ("dips_below_zero",)
    job = problems[0].job("x = 1\n")
    assert (job.mode, job.entry_points, job.context) == ("check", ("dips_below_zero",), problems[0].prompt)


def test_mbpp_records_normalise_with_entry_points_from_the_reference_code():
    problems = [problem_from_record(r) for r in _records("mbppplus_sample.jsonl")]
    assert [p.entry_points for p in problems] == [("shared_items",), ("is_composite",), ("largest_n",),
                                                  ("square_perimeter",)]
    assert problems[1].test_imports == ("import math",)
    assert problems[0].task_id == "2" and problems[0].prompt.startswith("Write a function")
    # The older 'text' field and the fallback to the original asserts.
    assert problems[3].prompt.startswith("Write a function that returns the perimeter")
    assert problems[3].test.startswith("assert square_perimeter(10)==40\n")
    job = problems[1].job("def is_composite(n):\n    return n > 3\n")
    assert (job.mode, job.context) == ("script", "import math")


def test_helpers_in_the_mbpp_test_and_builtins_are_never_entry_points():
    record = {
        "task_id": 9, "prompt": "p", "test_imports": [],
        "code": "def zip(a):\n    return a\ndef f(a):\n    return a\ndef assertion(x):\n    pass\n",
        "test": "def assertion(out, exp):\n    assert out == exp\n"
        "for i, e in zip([1], [1]):\n    assertion(f(i), e)\n",
    }
    assert problem_from_record(record).entry_points == ("f",)


def test_humaneval_program_building():
    problem = problem_from_record(_records("humanevalplus_sample.jsonl")[2])
    full = "def decode_rotate(s):\n    return s"
    program = build_program(problem, full)
    assert program.startswith(problem.prompt.rstrip("\n")) and program.endswith(full + "\n")
    body = "    return s\n"
    assert build_program(problem, body) == problem.prompt + body + "\n"
    mbpp = problem_from_record(_records("mbppplus_sample.jsonl")[1])
    program = build_program(mbpp, "def is_composite(n):\n    return 1")
    assert program == "import math\n\ndef is_composite(n):\n    return 1\n"


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"task_id": "HumanEval/9", "prompt": P, "entry_point": "f"}, "'test'"),
        ({"task_id": "HumanEval/9", "prompt": P, "entry_point": "f", "test": "assert 1"}, "check"),
        ({"task_id": 5, "code": "def f(): pass", "test_list": ["assert f() is None"]}, "(or 'text')"),
        ({"task_id": 5, "prompt": "p", "code": "def f(): pass"}, "test_list"),
        ({"task_id": 5, "prompt": "p", "code": "def g(): pass", "test": "assert f() == 1"}, "entry_point"),
        ({"task_id": 5, "question": "q"}, "not a HumanEval+ record"),
        ({"task_id": 5, "prompt": "p", "test_list": ["assert f(1) ==="]}, "not valid Python"),
        ({"task_id": "HumanEval/9", "prompt": "def f(:\n", "entry_point": "f", "test": "def check(c): pass"},
         "'prompt' is not valid Python"),
    ],
)
def test_malformed_records_name_the_field(record, needle):
    with pytest.raises(InputError, match=r"code task (5|HumanEval/9)") as info:
        problem_from_record(record)
    assert needle in str(info.value)
