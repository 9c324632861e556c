"""Budget diagnostics and per-sample records inside real lm-eval runs (scripted LM and the tiny model)."""

from __future__ import annotations

import json
import logging

import pytest

pytest.importorskip("lm_eval")

from harness_support import (
    PROBE_TASK_YAML,
    build_tiny_model,
    scripted_lm_class,
    write_jsonl,
    write_scripted_task,
)
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from rtc_metrics.compare import LoadOptions
from rtc_metrics.compare.lmeval import rows_from_results
from rtc_metrics.diagnostics import budget_hit, suggest_max_gen_toks

V = "<think>work</think> The answer is 42"
V7 = "<think>work</think> The answer is 7"
LONG = "<think>" + "still working " * 40  # 567 chars: ceil(/4) = 142 tokens > budget 100
SHORT = "<think>short"  # ended (EOS or a stop) while the trace was open
M = "The answer is 42"


def _run(folder, tasks, metadata=None, **kwargs):
    tm = TaskManager(
        include_path=[str(folder)], include_defaults=False, metadata={"rtc_format": "qwen3", **(metadata or {})}
    )
    return simple_evaluate(
        model=scripted_lm_class()(), tasks=tasks, task_manager=tm, log_samples=True, bootstrap_iters=0, **kwargs
    )


def test_budget_hit_and_truncation_causes_with_scripted_generations(tmp_path, caplog):
    docs = [(V, "42"), (LONG, "42"), (SHORT, "42"), (M, "42"), (V7, "42")]
    write_scripted_task(tmp_path, "rtc_b1", docs)
    with caplog.at_level(logging.WARNING, logger="rtc_tasks.diagnostics"):
        res = _run(tmp_path, ["rtc_b1"], gen_kwargs="max_gen_toks=100")
    r = res["results"]["rtc_b1"]
    assert r["budget_hit,none"] == pytest.approx(1 / 5)
    assert r["rtc_sample,none"] is None
    samples = {s["doc_id"]: s["rtc_sample"] for s in res["samples"]["rtc_b1"]}
    assert samples[1]["status"] == "truncated" and samples[1]["budget_hit"] is True
    assert "truncated_by_budget" in samples[1]["anomalies"]
    assert samples[1]["gen_tokens"] == 142 and samples[1]["tokens_approx"] is True
    assert samples[2]["status"] == "truncated" and samples[2]["budget_hit"] is False
    assert "stopped_inside_trace" in samples[2]["anomalies"]
    assert samples[0] == {
        "status": "valid",
        "anomalies": [],
        "prefixed": False,
        "trace_chars": 4,
        "trace_tokens": 1,
        "gen_tokens": 9,
        "tokens_approx": True,
        "max_gen_toks": 100,
        "budget_hit": False,
        "answer": "The answer is 42",
    }
    assert samples[3]["status"] == "missing" and samples[3]["trace_chars"] == 0
    # 20% > 5%: warned, with a suggestion of at least twice the budget.
    warning = [rec.getMessage() for rec in caplog.records if rec.name == "rtc_tasks.diagnostics"]
    assert len(warning) == 1 and "rerun with --gen_kwargs max_gen_toks=256" in warning[0]
    report = res["configs"]["rtc_b1"]["metadata"]["rtc_budget"]
    assert report["truncated_by_budget"] == 1 and report["stopped_inside_trace"] == 1
    assert report["suggested_max_gen_toks"] == 256


def test_threshold_from_metadata_and_per_class_correct_keys(tmp_path, caplog):
    docs = [(V, "42"), (LONG, "42"), (M, "42"), (M, "3"), (V7, "42"), (V, "42")]
    write_scripted_task(tmp_path, "rtc_b2", docs)
    with caplog.at_level(logging.INFO, logger="rtc_tasks.diagnostics"):
        res = _run(tmp_path, ["rtc_b2"], metadata={"rtc_budget_warn": 0.5}, gen_kwargs="max_gen_toks=100")
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING and "rerun" in rec.getMessage()]
    r = res["results"]["rtc_b2"]
    # correct per class / n: valid 2 of 3, missing 1 of 2, truncated 0 of 1.
    assert r["rtc_valid_correct,none"] == pytest.approx(2 / 6)
    assert r["rtc_missing_correct,none"] == pytest.approx(1 / 6)
    assert r["rtc_truncated_correct,none"] == 0.0 and r["rtc_empty_correct,none"] == 0.0
    # A results file alone gives the per-class counts for the decomposition.
    data = {"results": res["results"], "configs": res["configs"], "n-samples": res["n-samples"], "date": 0.0}
    row = rows_from_results(tmp_path / "results_x.json", data, LoadOptions(), [])[0]
    assert dict(row.classes.scored) == pytest.approx({"valid": 3, "empty": 0, "truncated": 1, "missing": 2})
    assert dict(row.classes.correct) == pytest.approx({"valid": 2, "empty": 0, "truncated": 0, "missing": 1})


def test_real_logger_writes_records_and_rtc_tools_read_them(tmp_path, monkeypatch, capsys):
    """lm-eval's own EvaluationTracker (what the CLI uses) writes rtc_sample into the samples file;
    rtc score re-reads budget hits, tokens and --show from it; the results file feeds the decomposition."""
    from lm_eval.loggers import EvaluationTracker

    from rtc_metrics.cli import main
    from rtc_metrics.lmeval_logs import rescore

    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside the example cells
    docs = [(V, "42"), (LONG, "42"), (SHORT, "42"), (M, "42")]
    write_scripted_task(tmp_path / "tasks", "rtc_b5", docs)
    out = tmp_path / "out"
    tracker = EvaluationTracker(output_path=str(out))
    res = _run(tmp_path / "tasks", ["rtc_b5"], gen_kwargs="max_gen_toks=100", evaluation_tracker=tracker)
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    tracker.save_results_samples(task_name="rtc_b5", samples=samples["rtc_b5"])
    lines = [json.loads(x) for f in out.rglob("samples_rtc_b5_*.jsonl") for x in f.read_text().splitlines()]
    assert [x["rtc_sample"]["status"] for x in lines] == ["valid", "truncated", "truncated", "missing"]
    assert lines[1]["rtc_sample"]["anomalies"] == ["no_answer", "truncated_by_budget"]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["results"]["rtc_b5"]["rtc_sample,none"] is None
    assert results["configs"]["rtc_b5"]["metadata"]["rtc_budget"]["n_budget_hit"] == 1

    summary = rescore(out)["runs"][0]["tasks"]["rtc_b5"]["filters"]["none"]
    assert summary["budget_hit"] == pytest.approx(1 / 4)
    assert summary["anomalies"]["truncated_by_budget"] == 1 and summary["anomalies"]["stopped_inside_trace"] == 1
    assert summary["acc_missing"] == 1.0 and summary["acc_truncated"] == 0.0

    assert main(["score", str(out), "--show", "truncated"]) == 0
    shown = capsys.readouterr().out
    assert "hit max_gen_toks=100" in shown and "stopped_inside_trace" in shown


def test_pre_opened_template_truncation_is_stopped_inside_trace(tmp_path):
    docs = [("still reasoning", "42"), ("done</think> The answer is 42", "42")]
    write_scripted_task(tmp_path, "rtc_b3", docs, prompt="<|assistant|><think>\n")
    res = _run(tmp_path, ["rtc_b3"])
    samples = {s["doc_id"]: s["rtc_sample"] for s in res["samples"]["rtc_b3"]}
    assert samples[0]["status"] == "truncated" and samples[0]["prefixed"] is True
    assert samples[0]["anomalies"] == ["no_answer", "stopped_inside_trace"]
    assert samples[0]["max_gen_toks"] == 4096
    assert samples[1]["status"] == "valid" and samples[1]["prefixed"] is True


def test_repeats_log_every_generation(tmp_path):
    docs = [([V, LONG], "42")]
    write_scripted_task(tmp_path, "rtc_b4", docs, extra="repeats: 2\n")
    res = _run(tmp_path, ["rtc_b4"], gen_kwargs="max_gen_toks=100")
    sample = res["samples"]["rtc_b4"][0]["rtc_sample"]
    assert [g["status"] for g in sample["repeats"]] == ["valid", "truncated"]
    assert res["results"]["rtc_b4"]["budget_hit,none"] == pytest.approx(0.5)


def test_real_tokenizer_counts_and_budget_hit_with_the_tiny_model(tmp_path):
    """The hf backend really stops at max_gen_toks=24 on the gamma chain; tokens are counted with
    the model's tokenizer (found from metadata 'pretrained')."""
    model = build_tiny_model(tmp_path / "plain", special_tags=False)
    data = write_jsonl(
        tmp_path / "probe.jsonl",
        [{"prompt": "Q one", "answer": "42"}, {"prompt": "Q gamma", "answer": "42"}],
    )
    (tmp_path / "rtc_probe.yaml").write_text(PROBE_TASK_YAML.format(data=data))
    tm = TaskManager(
        include_path=[str(tmp_path)],
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "pretrained": str(model)},
    )
    res = simple_evaluate(
        model="hf",
        model_args=f"pretrained={model},dtype=float32",
        tasks=["rtc_probe"],
        task_manager=tm,
        log_samples=True,
        bootstrap_iters=0,
        device="cpu",
    )
    samples = {s["doc_id"]: s["rtc_sample"] for s in res["samples"]["rtc_probe"]}
    assert samples[0]["status"] == "valid" and samples[0]["budget_hit"] is False
    assert samples[0]["tokens_approx"] is False
    hit = samples[1]
    assert hit["status"] == "truncated" and hit["budget_hit"] is True, hit
    assert "truncated_by_budget" in hit["anomalies"]
    # 24 generated tokens; re-encoding merges "<t"+"hink>" into "<think>": within the slack.
    assert 22 <= hit["gen_tokens"] <= 24
    assert res["results"]["rtc_probe"]["budget_hit,none"] == pytest.approx(0.5)
    json.dumps(res["samples"]["rtc_probe"])  # the records are JSON-ready


def test_budget_rules():
    assert budget_hit(100, 100) and budget_hit(98, 100) and not budget_hit(97, 100)
    assert budget_hit(24, 24) and budget_hit(23, 24) and not budget_hit(22, 24)
    assert budget_hit(32112, 32768) and not budget_hit(32111, 32768)
    assert not budget_hit(10, None)
    # At least twice the budget; longer finished generations raise it; powers of two.
    assert suggest_max_gen_toks([10, 20], 100) == 256
    assert suggest_max_gen_toks([900] * 19 + [10], 100) == 2048  # 1.25 × p95 900 = 1125
    assert suggest_max_gen_toks([], 32768) == 65536


def test_bad_budget_threshold_is_a_clear_error(tmp_path):
    from rtc_tasks.settings import RTCSettingsError

    write_scripted_task(tmp_path, "rtc_b6", [(V, "42")])
    with pytest.raises(RTCSettingsError, match="rtc_budget_warn='lots' must be a share in"):
        _run(tmp_path, ["rtc_b6"], metadata={"rtc_budget_warn": "lots"})
