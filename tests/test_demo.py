"""The offline demo: toy builders, and a reduced end-to-end run (real SFT, real lm_eval)."""

import json

import pytest

from rtc_metrics import detect_format, get_format, parse_trace
from rtc_metrics.demo.arithmetic import lm_eval_dataset, make_problems
from rtc_metrics.demo.pipeline import DemoConfig, run_demo
from rtc_metrics.demo.pretrain import completion_text, encode_pretraining_example, generation_prompt
from rtc_metrics.demo.toy import build_model, build_tokenizer


def test_arithmetic_traces_are_correct_and_seeded():
    problems = make_problems(200, seed=5)
    assert problems == make_problems(200, seed=5)
    for p in problems:
        a, op, b = p.prompt.removeprefix("What is ").removesuffix("?").split()
        expected = int(a) + int(b) if op == "+" else int(a) - int(b)
        assert p.answer == str(expected) and p.trace.endswith(f"so {expected}")
    data = lm_eval_dataset(rtc_toy_n=7, rtc_toy_seed=5, pretrained="ignored")
    assert data["test"].num_rows == 7 and data["test"][0]["answer"] == problems[0].answer


@pytest.mark.parametrize(("style", "family", "prefixed"), [("qwen3", "qwen3", False), ("r1", "deepseek_r1", True)])
def test_toy_tokenizer_and_templates(style, family, prefixed):
    tok = build_tokenizer(style)
    fmt = detect_format(tok)
    assert (fmt.name, fmt.prefixed) == (family, prefixed)
    for marker in ("<think>", "</think>", tok.eos_token):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    problem = make_problems(1, seed=0)[0]
    prompt, completion = generation_prompt(problem, tok), completion_text(problem, tok)
    ids, labels = encode_pretraining_example(problem, tok)
    assert tok.decode(ids) == prompt + completion  # character-level: exact round trip
    assert labels.count(-100) == len(tok(prompt, add_special_tokens=False)["input_ids"])
    # the completion the model is taught is a valid trace under the detected format
    parsed = parse_trace(completion.removesuffix(tok.eos_token), fmt, prompt=prompt)
    assert parsed.status == "valid" and parsed.answer == problem.response


def test_toy_model_is_deterministic():
    tok = build_tokenizer()
    a, b = build_model(tok, seed=3), build_model(tok, seed=3)
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert 300_000 < sum(p.numel() for p in a.parameters()) < 2_000_000


@pytest.mark.slow
def test_reduced_demo_produces_well_formed_results(tmp_path):
    logs: list[str] = []
    config = DemoConfig(
        out=tmp_path / "demo", pretrain_steps=20, pretrain_batch=16, sft_steps=4, sft_batch=8, n_eval=6,
        n_monitor=4, monitor_every=2, strategies=("bare", "mask"), r1_strategies=("bare",), max_gen_toks=24,
        threads=1, log=logs.append,
    )
    summary = run_demo(config)
    saved = json.loads((config.out / "summary.json").read_text())
    assert saved == summary
    assert set(summary) == {"base", "r1-base", "bare", "mask", "r1-bare"}
    for label, metrics in summary.items():
        assert set(metrics) == {"pass@1", "vr", "er", "tr", "mr", "rpass@1"}, label
        assert metrics["vr"] + metrics["er"] + metrics["tr"] + metrics["mr"] == pytest.approx(1)
        assert metrics["rpass@1"] is None or 0 <= metrics["rpass@1"] <= 1
        # every number comes from the lm-eval results file of that model
        (results_file,) = (config.out / "eval" / label).glob("*/results_*.json")
        row = json.loads(results_file.read_text())["results"]["rtc_toy_arithmetic"]
        assert metrics["vr"] == row["vr,none"] and metrics["pass@1"] == row["exact_match,none"]
    # monitor curves, and the compare outputs
    curve = [json.loads(x) for x in (config.out / "sft" / "mask" / "monitor.jsonl").read_text().splitlines()]
    assert curve and {"step", "vr", "er", "tr", "mr"} <= set(curve[-1])
    rows = json.loads((config.out / "leaderboard.json").read_text())
    assert {r["model"] for r in rows} >= {"base", "bare", "mask", "r1-bare"}
    assert list((config.out / "figures").glob("*.png")) and (config.out / "report.html").is_file()
    # a second run reuses every cached stage
    logs.clear()
    assert run_demo(config) == summary
    assert any("base model: cached" in line for line in logs) and any("sft mask: cached" in line for line in logs)
    assert get_format("qwen3").open == "<think>"
