"""RTCTask metrics inside real lm-eval runs (simple_evaluate) with a scripted LM: fast, exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from harness_support import recount, scripted_lm_class, write_jsonl, write_scripted_task
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from rtc_tasks.settings import RTCSettingsError

V = "<think>work</think> The answer is 42"  # valid, says 42
V7 = "<think>work</think> The answer is 7"  # valid, says 7
E = "<think> </think> The answer is 42"  # empty
T = "<think>still working"  # truncated
M = "The answer is 42"  # missing


def run(folder: Path, tasks: list[str], metadata: dict | None = None, **kwargs):
    tm = TaskManager(
        include_path=[str(folder)],
        include_defaults=False,
        metadata={"rtc_format": "qwen3", **(metadata or {})},
    )
    kwargs.setdefault("bootstrap_iters", 0)
    return simple_evaluate(
        model=scripted_lm_class()(), tasks=tasks, task_manager=tm, log_samples=True, **kwargs
    )


def test_metrics_equal_recount_from_logged_samples(tmp_path):
    docs = [(V, "42"), (V, "42"), (V7, "42"), (E, "42"), (T, "42"), (M, "42"), (M, "3")]
    write_scripted_task(tmp_path, "rtc_s1", docs)
    res = run(tmp_path, ["rtc_s1"], bootstrap_iters=1000)
    r = res["results"]["rtc_s1"]
    expected = recount(res["samples"]["rtc_s1"], "qwen3")
    assert expected["vr"] == pytest.approx(3 / 7) and expected["rpass@1"] == pytest.approx(2 / 3)
    for key, value in expected.items():
        assert r[f"{key},none"] == pytest.approx(value, abs=1e-12), key
    # The four rates partition the docs; closed-form stderr for rates, none for the ratio.
    assert sum(r[f"{k},none"] for k in ("vr", "er", "tr", "mr")) == pytest.approx(1.0)
    p = 3 / 7
    assert r["vr_stderr,none"] == pytest.approx(math.sqrt(p * (1 - p) / 6))
    assert r["rpass@1_stderr,none"] == "N/A"
    assert r["rtc_valid_correct,none"] == pytest.approx(2 / 7)
    # Logged resps stay raw; the task's scoring saw only the answer segment.
    sample = res["samples"]["rtc_s1"][0]
    assert sample["resps"] == [[V]]
    assert sample["filtered_resps"] == ["The answer is 42"]


def test_filters_see_only_the_answer_segment(tmp_path):
    # The trace says 17, the answer says nothing numeric: a leak would score it correct.
    write_scripted_task(tmp_path, "rtc_leak", [("<think>The answer is 17</think> not sure", "17")])
    res = run(tmp_path, ["rtc_leak"])
    assert res["results"]["rtc_leak"]["exact_match,none"] == 0.0
    assert res["results"]["rtc_leak"]["vr,none"] == 1.0


def test_group_rpass_is_pooled_not_a_mean_of_ratios(tmp_path):
    # The notes' E4 case: (valid, valid∧correct) = A (10, 1), B (0 of 3 docs), C (2, 1).
    write_scripted_task(tmp_path, "rtc_ga", [(V, "42")] + [(V, "5")] * 9)
    write_scripted_task(tmp_path, "rtc_gb", [(M, "42"), (T, "42"), (E, "42")])
    write_scripted_task(tmp_path, "rtc_gc", [(V, "42"), (V, "5"), (M, "42"), (M, "42"), (T, "1")])
    metrics = ["exact_match", "vr", "er", "tr", "mr", "rtc_valid_correct", "rpass@1"]
    (tmp_path / "rtc_gall.yaml").write_text(
        "group: rtc_gall\ntask: [rtc_ga, rtc_gb, rtc_gc]\naggregate_metric_list:\n"
        + "".join(f"  - metric: {m}\n    weight_by_size: true\n" for m in metrics)
    )
    res = run(tmp_path, ["rtc_gall"], bootstrap_iters=1000)
    g = res["results"]["rtc_gall"]
    assert g["rpass@1,none"] == pytest.approx(2 / 12)
    assert g["rpass@1_stderr,none"] == "N/A"
    assert res["results"]["rtc_gb"]["rpass@1,none"] is None  # no valid doc: undefined, not NaN
    # The other group metrics are lm-eval's size-weighted means (pooled rates).
    assert g["vr,none"] == pytest.approx(12 / 18)
    assert g["exact_match,none"] == pytest.approx((1 + 2 + 3) / 18)
    # Strict JSON: no NaN anywhere.
    json.dumps(res["results"], allow_nan=False, default=str)


def test_zero_valid_docs_gives_null_rpass(tmp_path):
    write_scripted_task(tmp_path, "rtc_none", [(M, "42"), (T, "42")])
    res = run(tmp_path, ["rtc_none"], bootstrap_iters=1000)
    r = res["results"]["rtc_none"]
    assert r["rpass@1,none"] is None and r["vr,none"] == 0.0 and r["tr,none"] == 0.5
    json.dumps(res["results"], allow_nan=False, default=str)


def test_bootstrap_is_never_run_for_rtc_metrics(tmp_path, monkeypatch):
    import lm_eval.api.metrics as lm_metrics

    def refuse(*args, **kwargs):
        raise AssertionError("bootstrap_stderr called")

    monkeypatch.setattr(lm_metrics, "bootstrap_stderr", refuse)
    write_scripted_task(tmp_path, "rtc_boot", [(V, "42"), (M, "42"), (V7, "42")])
    res = run(tmp_path, ["rtc_boot"], bootstrap_iters=100000)
    assert isinstance(res["results"]["rtc_boot"]["vr_stderr,none"], float)


def test_repeats_rates_count_every_generation(tmp_path):
    extra = "repeats: 3\n"
    write_scripted_task(tmp_path, "rtc_rep", [([V, M, T], "42"), ([V7, V7, E], "42")], extra=extra)
    res = run(tmp_path, ["rtc_rep"])
    r = res["results"]["rtc_rep"]
    # 6 generations: 3 valid, 1 empty, 1 truncated, 1 missing.
    assert r["vr,none"] == pytest.approx(3 / 6) and r["er,none"] == pytest.approx(1 / 6)
    assert r["tr,none"] == pytest.approx(1 / 6) and r["mr,none"] == pytest.approx(1 / 6)
    # take_first scores sample 0: doc 0 correct, doc 1 wrong; each doc's correctness weighs
    # its valid generations: (1 × 1 + 2 × 0) / 3.
    assert r["exact_match,none"] == pytest.approx(0.5)
    assert r["rpass@1,none"] == pytest.approx(1 / 3)


def test_predict_only_keeps_structural_rates(tmp_path):
    write_scripted_task(tmp_path, "rtc_pred", [(V, "42"), (M, "42")])
    res = run(tmp_path, ["rtc_pred"], predict_only=True)
    r = res["results"]["rtc_pred"]
    assert r["vr,none"] == 0.5 and r["mr,none"] == 0.5
    assert "rpass@1,none" not in r


def test_limit_counts_only_evaluated_docs(tmp_path):
    write_scripted_task(tmp_path, "rtc_lim", [(V, "42"), (M, "42"), (T, "42"), (V, "42")])
    res = run(tmp_path, ["rtc_lim"], limit=2)
    r = res["results"]["rtc_lim"]
    assert r["sample_len"] == 2 and r["vr,none"] == 0.5 and r["rpass@1,none"] == 1.0


def test_prefixed_is_decided_per_instance_from_the_prompt(tmp_path):
    # Prompts ending "<think>\n" pre-open the trace: "x</think> ans" is valid there,
    # and the same text after a plain prompt is a stray close: still valid by the rules,
    # but "work" alone (no close) is truncated only when pre-opened.
    write_jsonl(
        tmp_path / "pre.jsonl",
        [
            {"prompt": "Q <think>\n", "answer": "42", "scripted": "work"},
            {"prompt": "Q", "answer": "42", "scripted": "work"},
        ],
    )
    write_scripted_task(tmp_path, "rtc_pre", [])
    yaml = (
        (tmp_path / "rtc_pre.yaml")
        .read_text()
        .replace(str(tmp_path / "rtc_pre.jsonl"), str(tmp_path / "pre.jsonl"))
    )
    (tmp_path / "rtc_pre.yaml").write_text(yaml)
    res = run(tmp_path, ["rtc_pre"])
    r = res["results"]["rtc_pre"]
    assert r["tr,none"] == 0.5 and r["mr,none"] == 0.5
    res = run(tmp_path, ["rtc_pre"], metadata={"rtc_prefixed": True})
    assert res["results"]["rtc_pre"]["tr,none"] == 1.0


@pytest.mark.parametrize(
    ("extra_meta", "gen_kwargs", "needle"),
    [
        ({}, {"until": ["\n\n"]}, "until"),
        ({}, {"until": ["</think>"]}, "until"),
        ({"think_end_token": "</think>"}, None, "think_end_token"),
    ],
)
def test_trace_destroying_settings_fail_before_generation(tmp_path, extra_meta, gen_kwargs, needle):
    write_scripted_task(tmp_path, "rtc_bad", [(V, "42")])
    with pytest.raises(RTCSettingsError, match=needle):
        run(tmp_path, ["rtc_bad"], metadata=extra_meta, gen_kwargs=gen_kwargs)


def test_unknown_format_is_a_clear_error(tmp_path):
    write_scripted_task(tmp_path, "rtc_nofmt", [(V, "42")])
    tm = TaskManager(include_path=[str(tmp_path)], include_defaults=False, metadata={})
    with pytest.raises(RTCSettingsError, match="rtc_format"):
        simple_evaluate(model=scripted_lm_class()(), tasks=["rtc_nofmt"], task_manager=tm, bootstrap_iters=0)


def test_custom_delimiters(tmp_path):
    write_scripted_task(tmp_path, "rtc_custom", [("[[a]] 42", "42"), ("[[ 42", "42")])
    res = run(tmp_path, ["rtc_custom"], metadata={"rtc_format": None, "rtc_open": "[[", "rtc_close": "]]"})
    r = res["results"]["rtc_custom"]
    assert r["vr,none"] == 0.5 and r["tr,none"] == 0.5 and r["rpass@1,none"] == 1.0
