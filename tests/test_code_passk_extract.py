"""pass@k estimator and program extraction (no code is executed here)."""

from __future__ import annotations

import itertools
import math

import pytest

from rtc_metrics.code import answer_segment, extract_program, fenced_blocks, pass_at_k, results_to_metrics


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_enumeration_over_subsets(n):
    # pass@k = P(a random k-subset of the n samples holds a correct one), by brute force.
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            expected = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
            assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct_and_large_n_is_stable():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert pass_at_k(200, 0, 100) == 0.0
    assert pass_at_k(5, 5, 5) == 1.0


@pytest.mark.parametrize("args", [(0, 0, 1), (3, 4, 1), (3, 1, 4), (3, 1, 0), (3.0, 1, 1), (3, True, 1)])
def test_pass_at_k_rejects_bad_arguments(args):
    with pytest.raises((ValueError, TypeError)):
        pass_at_k(*args)


def test_results_to_metrics_keys_follow_repeats():
    assert results_to_metrics([True]) == {"pass@1": 1.0}
    out = results_to_metrics([True, False, False, False])
    assert out == {"pass@1": pytest.approx(0.25), "pass@4": 1.0}
    assert results_to_metrics([False, True], ks=[2]) == {"pass@2": 1.0}
    with pytest.raises(ValueError):
        results_to_metrics([True], ks=[2])


def test_single_fenced_block_is_taken_over_surrounding_prose():
    answer = "Here you go:\n```python\ndef f(x):\n    return x + 1\n```\nThis adds one."
    assert extract_program(answer, ["f"]) == "def f(x):\n    return x + 1"


def test_raw_text_without_fences_is_the_program():
    assert extract_program("\n\ndef f(x):\n    return 2\n\n", ["f"]) == "def f(x):\n    return 2"
    # A bare body completing a prompt keeps its indentation.
    assert extract_program("\n    y = x\n    return y\n", ["f"]) == "    y = x\n    return y"
    assert extract_program("   \n", ["f"]) == ""


def test_the_last_block_defining_the_entry_point_wins_over_examples_and_tests():
    answer = (
        "First try:\n```python\ndef f(x):\n    return x\n```\n"
        "Fixed:\n```py\ndef helper(y):\n    return y\n\ndef f(x):\n    return helper(x) * 2\n```\n"
        "Usage:\n```python\nprint(f(3))\nassert f(1) == 2\n```\n"
        "Output:\n```text\n6\n```\n"
    )
    expected = "def helper(y):\n    return y\n\ndef f(x):\n    return helper(x) * 2"
    assert extract_program(answer, ["f"]) == expected


def test_non_python_blocks_only_when_nothing_else_and_longest_without_entry_point():
    assert extract_program("```bash\npip install x\n```\n```\nx = 1\ny = 2\n```", ["f"]) == "x = 1\ny = 2"
    assert extract_program("```js\nlet a = 1\n```", ["f"]) == "let a = 1"
    assert extract_program("```python\na = 1\n```\n```python\nb = 22222\n```", ["f"]) == "b = 22222"


def test_unclosed_fence_and_indented_def_and_tildes():
    assert extract_program("```python\ndef f():\n    return 1\n", ["f"]) == "def f():\n    return 1"
    # A method named like the entry point is not a top-level definition.
    answer = "```python\nclass A:\n    def f(self):\n        return 0\n```\n"
    answer += "~~~python\ndef f():\n    return 5\n~~~"
    assert extract_program(answer, ["f"]) == "def f():\n    return 5"
    assert [tag for tag, _ in fenced_blocks(answer)] == ["python", "python"]


def test_code_in_the_reasoning_trace_is_never_extracted():
    generation = "<think>\n```python\ndef f():\n    return 'trace'\n```\n</think>\n"
    generation += "```python\ndef f():\n    return 'answer'\n```"
    answer = answer_segment(generation, "qwen3")
    assert "trace" not in answer
    assert extract_program(answer, ["f"]) == "def f():\n    return 'answer'"
    # A truncated trace has no answer segment, hence no program, even though code was written.
    assert answer_segment("<think>\n```python\ndef f():\n    return 1\n```", "qwen3") == ""
