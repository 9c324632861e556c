"""Statistics: every formula checked against a hand computation."""

import math

import pytest

from rtc_metrics import macro_average, parse_trace, pooled, summarize, wilson_interval

VALID, EMPTY, TRUNC, MISS = "<think>r</think>a", "<think> </think>a", "<think>r", "a"


def traces(*texts):
    return [parse_trace(t, "qwen3") for t in texts]


def test_rates_partition_and_conditional_accuracy():
    ts = traces(VALID, VALID, VALID, EMPTY, TRUNC, MISS, MISS, VALID)
    correct = [1, 0, 1, 1, 0, 1, 0, None]  # the last generation is unscored
    s = summarize(ts, correct)
    assert (s.vr, s.er, s.tr, s.mr) == (4 / 8, 1 / 8, 1 / 8, 2 / 8)
    assert s.vr + s.er + s.tr + s.mr == pytest.approx(1)
    assert s.ir == pytest.approx(0.5)
    assert s.pass_at_1 == pytest.approx(4 / 7)
    assert s.rpass_at_1 == pytest.approx(2 / 3)  # valid & scored: 1, 0, 1
    assert s.acc_invalid == pytest.approx(2 / 4)  # empty 1, trunc 0, miss 1, miss 0
    assert s.answer_rate == pytest.approx(7 / 8)  # the truncated one has no answer
    assert s.mean_trace_chars == pytest.approx((1 + 1 + 1 + 0 + 1 + 1) / 6)


def test_rpass_undefined_without_valid_traces():
    s = summarize(traces(MISS, EMPTY), [1, 0])
    assert s.rpass_at_1 is None and s.pass_at_1 == 0.5
    d = s.to_dict()
    assert d["rpass@1"] is None and d["rpass@1_ci"] is None


def test_no_correctness_means_no_accuracy():
    s = summarize(traces(VALID, MISS))
    assert s.pass_at_1 is None and s.rpass_at_1 is None and s.vr == 0.5


def test_wilson_matches_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 20)
    assert lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.1611, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_pooled_rpass_is_sum_over_sum_not_mean_of_ratios():
    # the lm-eval notes' E4 case: (valid, valid&correct) = (10, 1), (0 of 3), (2, 1)
    a = summarize(traces(*[VALID] * 10), [1] + [0] * 9)
    b = summarize(traces(MISS, MISS, MISS), [1, 1, 0])
    c = summarize(traces(VALID, VALID), [1, 0])
    total = pooled([a, b, c])
    assert total.rpass_at_1 == pytest.approx(2 / 12)
    assert total.n == 15 and total.vr == pytest.approx(12 / 15)
    macro = macro_average([a, b, c])
    assert macro["rpass@1"] == pytest.approx((0.1 + 0.5) / 2)  # B has no valid trace: skipped
    assert macro["vr"] == pytest.approx((1 + 0 + 1) / 3)
    assert macro["rpass@1_ci"][0] <= macro["rpass@1"] <= macro["rpass@1_ci"][1]


def test_intervals_in_dict_and_token_lengths():
    class CharTokenizer:
        def encode(self, text, add_special_tokens=False):
            return list(text)

    s = summarize(traces("<think>abc</think>x", "<think>abcde</think>y", MISS), [1, 0, 1], tokenizer=CharTokenizer())
    d = s.to_dict()
    assert d["mean_trace_tokens"] == 4 and d["counts"]["valid"] == 2
    lo, hi = d["mean_trace_chars_ci"]
    half = 1.959964 * math.sqrt(2 / 2)  # sample sd of (3, 5) is sqrt(2); n = 2
    assert (lo, hi) == (pytest.approx(4 - half, abs=1e-4), pytest.approx(4 + half, abs=1e-4))
    assert d["vr_ci"] == list(wilson_interval(2, 3))


def test_bad_correctness_values_are_rejected():
    with pytest.raises(ValueError, match="one correctness value"):
        summarize(traces(VALID), [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        summarize(traces(VALID), [2])
    assert summarize(traces(VALID), [float("nan")]).n_scored == 0
