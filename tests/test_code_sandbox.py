"""Sandboxed execution: right programs pass, wrong ones fail, the opt-in is enforced, results repeat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtc_metrics.code import (
    CodeJob,
    SandboxLimits,
    UnsafeCodeNotConfirmed,
    build_program,
    problem_from_record,
    run_answers,
    run_jobs,
    score_answers,
    score_batch,
)
from rtc_metrics.code.optin import OPT_IN_ENV

FIXTURES = Path(__file__).parent / "fixtures"
LIMITS = SandboxLimits(timeout_s=5)


def _records(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def _reference_program(record, broken=False):
    problem = problem_from_record(record)
    code = record["canonical_solution"] if problem.kind == "humaneval" else record["code"]
    if broken:  # the solution's first return value replaced by None
        code = code.replace("return ", "return None and ", 1)
    return problem, build_program(problem, code)


def test_reference_solutions_pass_and_broken_ones_fail():
    jobs, expected = [], []
    for record in _records("humanevalplus_sample.jsonl") + _records("mbppplus_sample.jsonl"):
        problem, program = _reference_program(record)
        jobs.append(problem.job(program))
        expected.append(True)
        jobs.append(problem.job(_reference_program(record, broken=True)[1]))
        expected.append(False)
    results = run_jobs(jobs, confirm_run_unsafe_code=True, limits=LIMITS, workers=2)
    assert [r.passed for r in results] == expected, [r.reason for r in results]
    assert all(r.reason == "all tests passed" for r in results if r.passed)
    assert all("rlimits" in r.layers and "process-group" in r.layers for r in results)


def test_floats_compare_with_tolerance_and_exact_types_matter():
    record = _records("humanevalplus_sample.jsonl")[1]
    problem = problem_from_record(record)
    close = "def median_abs_deviation(values):\n" + record["canonical_solution"].replace(
        "/ n", "/ n + 1e-9"
    )
    far = "def median_abs_deviation(values):\n" + record["canonical_solution"].replace("/ n", "/ n + 1e-3")
    # A list where a tuple is expected fails, as it would in-process.
    record4 = _records("humanevalplus_sample.jsonl")[3]
    listy = "def most_common_words(text):\n" + record4["canonical_solution"].replace(
        "return tuple(sorted(", "return list(sorted("
    ).replace("), counts", ", counts")
    problem4 = problem_from_record(record4)
    results = run_jobs(
        [problem.job(build_program(problem, close)), problem.job(build_program(problem, far)),
         problem4.job(build_program(problem4, listy))],
        confirm_run_unsafe_code=True, limits=LIMITS,
    )
    assert [r.passed for r in results] == [True, False, False], [r.reason for r in results]


def test_helpers_defined_in_the_humaneval_prompt_are_usable_by_tests_and_program():
    record = _records("humanevalplus_sample.jsonl")[2]
    problem = problem_from_record(record)
    uses_helper = "def decode_rotate(s):\n    for _ in range(25):\n        s = encode_rotate(s)\n    return s"
    (result,) = run_jobs([problem.job(build_program(problem, uses_helper))], confirm_run_unsafe_code=True)
    assert result.passed, result.reason


def test_without_the_opt_in_nothing_runs_and_the_message_says_how(monkeypatch):
    monkeypatch.delenv(OPT_IN_ENV, raising=False)
    job = CodeJob("def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n", "check", ("f",))
    with pytest.raises(UnsafeCodeNotConfirmed, match="--confirm_run_unsafe_code"):
        run_jobs([job])
    with pytest.raises(UnsafeCodeNotConfirmed, match=OPT_IN_ENV):
        score_answers(_records("mbppplus_sample.jsonl")[0], [""])
    with pytest.raises(UnsafeCodeNotConfirmed):
        run_jobs([job], confirm_run_unsafe_code=False)
    monkeypatch.setenv(OPT_IN_ENV, "1")
    assert run_jobs([job])[0].passed
    # An explicit False still wins over the environment.
    with pytest.raises(UnsafeCodeNotConfirmed):
        run_jobs([job], confirm_run_unsafe_code=False)


def _scripted_answers():
    he = _records("humanevalplus_sample.jsonl")
    mb = _records("mbppplus_sample.jsonl")
    good0 = "```python\ndef dips_below_zero(changes):\n" + he[0]["canonical_solution"] + "```"
    bad0 = "```python\ndef dips_below_zero(changes):\n    return False\n```"
    body0 = he[0]["canonical_solution"]  # a bare completion of the prompt, no fence
    good2 = "Sure.\n```python\n" + mb[0]["code"] + "\n```"
    bad2 = "```python\ndef shared_items(a, b):\n    return tuple(sorted(set(a) | set(b)))\n```"  # union
    return [
        (he[0], [good0, bad0, body0, "I cannot solve this."]),  # 2 of 4
        (mb[0], [good2, bad2, good2]),  # 2 of 3
        (mb[3], ["```python\ndef square_perimeter(a):\n    return a * 4\n```"]),  # 1 of 1
        (he[2], [""]),  # 0 of 1, no code, nothing started
    ]


def test_scripted_generations_give_exact_pass_at_k_and_repeat_identically():
    items = _scripted_answers()
    first = score_batch(items, confirm_run_unsafe_code=True, limits=LIMITS, workers=2)
    assert first == [
        {"pass@1": 0.5, "pass@4": 1.0},
        {"pass@1": pytest.approx(2 / 3), "pass@3": 1.0},
        {"pass@1": 1.0},
        {"pass@1": 0.0},
    ]
    second = score_batch(items, confirm_run_unsafe_code=True, limits=LIMITS, workers=1)
    assert second == first
    rows = run_answers(items[3:], confirm_run_unsafe_code=True)
    assert rows[0][0].reason == "no code in the answer segment"


def test_string_set_order_is_deterministic_across_runs():
    # Without a fixed hash seed the order of this list would change between processes.
    job = CodeJob(
        "def f(words):\n    return list(set(words))\n",
        "def check(c):\n    assert c(['pear', 'apple', 'fig', 'kiwi', 'plum', 'date']) == "
        "['pear', 'apple', 'fig', 'kiwi', 'plum', 'date']\n",
        "check",
        ("f",),
    )
    outcomes = {r.passed for r in run_jobs([job] * 6, confirm_run_unsafe_code=True, limits=LIMITS, workers=2)}
    assert len(outcomes) == 1


def test_bad_limits_and_jobs_are_rejected():
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="mode"):
        CodeJob("", "", "unittest", ("f",))
    with pytest.raises(ValueError, match="workers"):
        run_jobs([], confirm_run_unsafe_code=True, workers=0)
