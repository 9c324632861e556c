"""rtc-chat-completions: trace reconstruction, payload, and an lm-eval run against a stub server.

The stub is a real HTTP server on 127.0.0.1 (ephemeral port) that answers the OpenAI chat
schema with scripted replies, so lm-eval's own request, retry and concurrency code runs.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("tenacity", reason="lm-eval's API models need tenacity (pip install 'lm-eval[api]')")

import lm_eval
from lm_eval.tasks import TaskManager

from examples.lmeval_local_task import recount, write_task
from rtc_metrics import get_format, parse_trace
from rtc_tasks.models.chat_completions import (
    ChatGeneration,
    RTCChatCompletion,
    raw_from_logprobs,
    rebuild_generation,
)

# (message, finish_reason, prefilled arg) -> expected status, split, prefilled, closed
CASES = [
    # Server with a reasoning parser (vLLM >= 0.10 names the field "reasoning").
    ({"reasoning": "Let me think", "content": " 42"}, "stop", None, "valid", True, None, True),
    ({"reasoning_content": "Let me think", "content": "42"}, "stop", None, "valid", True, None, True),
    ({"reasoning": "\n\n", "content": "42"}, "stop", None, "empty", True, None, True),
    ({"reasoning": "Let me think more", "content": None}, "length", None, "truncated", True, None, False),
    ({"reasoning": "Let me think", "content": None}, "length", True, "truncated", True, True, False),
    # No parser: the raw text is in content.
    ({"content": "<think>Let me think</think> 42"}, "stop", None, "valid", False, False, True),
    ({"content": "<think>Let me think"}, "length", None, "truncated", False, False, False),
    ({"content": "The answer is 42"}, "stop", None, "missing", False, False, None),
    # The template pre-filled "<think>": the model's output starts inside the trace.
    ({"content": "Let me think</think> 42"}, "stop", None, "valid", False, True, True),
    ({"content": "Let me think and think"}, "length", True, "truncated", False, True, False),
    ({"content": "Let me think</think> 42"}, "stop", True, "valid", False, True, True),
    # Null content and no reasoning: nothing generated (lm-eval would substitute its placeholder).
    ({"content": None}, "stop", None, "missing", False, None, None),
]


@pytest.mark.parametrize(("message", "finish", "prefilled", "status", "split", "pre", "closed"), CASES)
def test_rebuild_generation_classifies_like_the_raw_output(
    message, finish, prefilled, status, split, pre, closed
):
    gen = rebuild_generation(message, "qwen3", finish, prefilled)
    assert isinstance(gen, ChatGeneration)
    assert parse_trace(gen, "qwen3").status.value == status
    assert (gen.server.split, gen.server.prefilled, gen.server.closed) == (split, pre, closed)
    assert gen.server.content_null is (message.get("content") is None)


def test_rebuild_keeps_the_answer_segment_and_uses_the_format_delimiters():
    gen = rebuild_generation({"reasoning": "a plan", "content": "\n\nFinal: 7"}, "magistral", "stop")
    fmt = get_format("magistral")
    assert gen == f"{fmt.open}a plan{fmt.close}\n\nFinal: 7"
    parsed = parse_trace(gen, fmt)
    assert (parsed.status.value, parsed.reasoning, parsed.answer) == ("valid", "a plan", "Final: 7")


def test_split_reply_with_null_content_that_stopped_is_flagged_ambiguous():
    gen = rebuild_generation({"reasoning": "done thinking", "content": None}, "qwen3", "stop")
    assert gen.server.ambiguous and gen.server.closed
    assert parse_trace(gen, "qwen3").status.value == "valid"


def test_a_family_that_prefills_by_default_reads_tagless_output_as_an_open_trace():
    # deepseek_r1's template always pre-opens the trace; no delimiter at all = never closed.
    gen = rebuild_generation({"content": "still thinking"}, "deepseek_r1", "length")
    assert gen.server.prefilled and parse_trace(gen, "deepseek_r1").status.value == "truncated"


# ----------------------------------------------------------------------------- stub server


class _Stub:
    """Scripted chat server: the reply is chosen by the last user message's text."""

    def __init__(self, replies: dict[str, dict], fail_first: int = 0) -> None:
        self.replies = replies
        self.fail_first = fail_first
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.payloads.append(body)
                    failing = stub.fail_first > 0
                    stub.fail_first -= failing
                if failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                question = body["messages"][-1]["content"]
                message, finish = stub.replies[question]
                choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
                data = json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"

    def __enter__(self) -> _Stub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


REPLIES = {
    "q-split": ({"reasoning": "Let me\n\n think", "content": " The answer is 42"}, "stop"),
    "q-split-trunc": ({"reasoning": "Let me\n\n think think", "content": None}, "length"),
    "q-raw": ({"content": "<think>Let me\n\n think</think> The answer is 42"}, "stop"),
    "q-prefill": ({"content": "Let me\n\n think</think> The answer is 42"}, "stop"),
    "q-missing": ({"content": "The answer is 42"}, "stop"),
    "q-null": ({"content": None}, "stop"),
}
EXPECTED = {
    "q-split": "valid",
    "q-split-trunc": "truncated",
    "q-raw": "valid",
    "q-prefill": "valid",
    "q-missing": "missing",
    "q-null": "missing",
}


def _model(url: str, **kwargs) -> RTCChatCompletion:
    return RTCChatCompletion(
        model="stub", base_url=url, rtc_format="qwen3", max_retries=2, timeout=20, **kwargs
    )


def _evaluate(lm, yaml_path):
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=[str(yaml_path)],
        task_manager=TaskManager(include_defaults=False),
        apply_chat_template=True,
        bootstrap_iters=0,
        log_samples=True,
    )


def test_lm_eval_run_rebuilds_traces_and_logged_samples_recount_exactly(tmp_path):
    rows = [{"question": q, "answer": "42"} for q in REPLIES]
    yaml_path = write_task(tmp_path / "task", "rtc_stub_chat", rows)
    record = tmp_path / "server_traces.jsonl"
    with _Stub(REPLIES, fail_first=1) as stub:
        out = _evaluate(_model(stub.url, num_concurrent=3, record_path=str(record)), yaml_path)

    samples = out["samples"]["rtc_stub_chat"]
    by_question = {s["doc"]["question"]: s for s in samples}
    for question, status in EXPECTED.items():
        raw = by_question[question]["resps"][0][0]
        assert parse_trace(raw, "qwen3").status.value == status, (question, raw)
    assert by_question["q-split"]["resps"][0][0] == "<think>Let me\n\n think</think> The answer is 42"

    metrics = out["results"]["rtc_stub_chat"]
    counted = recount([s["resps"][0][0] for s in samples])
    for key, value in counted.items():
        assert metrics[f"{key},none"] == pytest.approx(value)
    assert counted["rtc_valid"] == pytest.approx(3 / 6)

    rows_out = {(r["task"], r["doc_id"]): r for r in map(json.loads, record.read_text().splitlines())}
    assert len(rows_out) == len(REPLIES)
    by_doc = {s["doc"]["question"]: rows_out[("rtc_stub_chat", s["doc_id"])] for s in samples}
    assert by_doc["q-split"]["split"] and by_doc["q-split"]["reasoning_field"] == "reasoning"
    assert not by_doc["q-raw"]["split"] and by_doc["q-prefill"]["prefilled"]
    assert by_doc["q-null"]["content_null"]


def test_payload_keeps_every_stop_adds_no_eos_and_passes_template_kwargs(tmp_path):
    stops = ["Question:", "Q:", "</s>", "<|im_end|>", "\n\nProblem:"]
    with _Stub({"q": ({"content": "42"}, "stop")}) as stub:
        lm = _model(stub.url, enable_thinking=False, eos_string="<|endoftext|>")
        lm.model_call([_chat("q")], generate=True, gen_kwargs={"until": stops, "max_gen_toks": 1000})
    (payload,) = stub.payloads
    assert payload["stop"] == stops  # lm-eval's local-chat-completions sends stop[:4] (+ EOS first)
    assert payload["max_tokens"] == 1000
    assert payload["chat_template_kwargs"] == {"enable_thinking": False}
    assert payload["skip_special_tokens"] is False and payload["spaces_between_special_tokens"] is False


def test_a_server_stop_limit_is_an_error_not_a_silent_cut(tmp_path):
    lm = _model("http://127.0.0.1:9/v1/chat/completions", max_stop_sequences=4, skip_special_tokens=None)
    with pytest.raises(ValueError, match="at most 4"):
        lm._create_payload([{"role": "user", "content": "q"}], gen_kwargs={"until": list("abcde")})
    payload = lm._create_payload([{"role": "user", "content": "q"}], gen_kwargs={"until": []})
    assert "skip_special_tokens" not in payload and payload["stop"] == []


def test_too_many_stops_fail_before_any_request_is_sent():
    from lm_eval.api.instance import Instance

    with _Stub({"q": ({"content": "42"}, "stop")}) as stub:
        lm = _model(stub.url, max_stop_sequences=2)
        inst = Instance("generate_until", {}, (_chat("q"), {"until": ["a", "b", "c"]}), 0, ("t", 0, 1))
        with pytest.raises(ValueError, match="3 stop sequences"):
            lm.generate_until([inst])
    assert stub.payloads == []


def test_model_args_that_would_lose_traces_or_delimiters_are_refused():
    with pytest.raises(ValueError, match="think_end_token"):
        _model("http://127.0.0.1:9/v1/chat/completions", think_end_token="</think>")
    with pytest.raises(ValueError, match="rtc_format"):
        RTCChatCompletion(model="some-unknown-model", base_url="http://127.0.0.1:9/v1/chat/completions")


def _chat(text: str):
    from lm_eval.models.api_models import JsonChatStr

    return JsonChatStr(json.dumps([{"role": "user", "content": text}]))


def _logprobs(*tokens: str) -> dict:
    return {"content": [{"token": t, "bytes": list(t.encode()), "logprob": 0.0} for t in tokens]}


def test_raw_from_logprobs_is_exact_where_the_split_fields_are_ambiguous():
    # Split reply, null content, finish "stop": the fields cannot tell whether the trace closed.
    tokens = ("<think>", "done", " thinking", "</think>", "<|im_end|>")
    choice = {"message": {"reasoning": "done thinking", "content": None}, "finish_reason": "stop",
              "stop_reason": None, "logprobs": _logprobs(*tokens)}  # fmt: skip
    raw = raw_from_logprobs(choice)
    assert raw == "<think>done thinking</think>"  # EOS dropped
    gen = rebuild_generation(choice["message"], "qwen3", "stop", raw=raw)
    assert gen.server.exact and gen.server.split and not gen.server.ambiguous
    assert parse_trace(gen, "qwen3").status.value == "valid"

    unclosed = {**choice, "logprobs": _logprobs("<think>", "done", " thinking", "<|im_end|>")}
    gen = rebuild_generation(unclosed["message"], "qwen3", "stop", raw=raw_from_logprobs(unclosed))
    assert parse_trace(gen, "qwen3").status.value == "truncated"


def test_raw_from_logprobs_cuts_stop_strings_and_refuses_partial_listings():
    choice = {"message": {"content": "<think>a</think> 42"}, "finish_reason": "stop", "stop_reason": "\nQ:",
              "logprobs": _logprobs("<think>", "a", "</think>", " 42", "\nQ", ":")}  # fmt: skip
    assert raw_from_logprobs(choice) == "<think>a</think> 42"
    trailing = {"message": {"content": "<think>a</think> 42\n"}, "finish_reason": "length",
                "logprobs": _logprobs("<think>", "a", "</think>", " 42", "\n")}  # fmt: skip
    assert raw_from_logprobs(trailing) == "<think>a</think> 42\n"
    # OpenAI lists only answer tokens: the reasoning is not in there, so the fields are used.
    answer_only = {"message": {"reasoning": "a", "content": " 42"}, "finish_reason": "length",
                   "logprobs": _logprobs(" 42")}  # fmt: skip
    assert raw_from_logprobs(answer_only) is None
    assert raw_from_logprobs({"message": {"content": "x"}, "finish_reason": "stop"}) is None


def test_exact_raw_asks_for_logprobs():
    lm = _model("http://127.0.0.1:9/v1/chat/completions", exact_raw=True)
    payload = lm._create_payload([{"role": "user", "content": "q"}], gen_kwargs={"until": []})
    assert payload["logprobs"] is True and payload["top_logprobs"] == 0
