"""``rtc-chat-completions``: lm-eval's chat-completions backend, with the reasoning trace kept.

lm-eval's ``local-chat-completions`` reads only ``choices[].message.content``. A server started
with a reasoning parser (``vllm serve ... --reasoning-parser qwen3``) moves the trace into
``reasoning`` (vLLM >= 0.10) or ``reasoning_content`` (DeepSeek's API, older vLLM), so every
sample would look "missing". This backend rebuilds the raw generation from both fields with the
model's delimiters (:mod:`rtc_metrics.formats`), so structural metrics come out the same whether
or not the server splits the trace, and records per sample what the server did.

HTTP, retries (``max_retries``), concurrency (``num_concurrent``), timeouts and caching are
lm-eval's own (``TemplateAPI``); only the payload and the reply parsing change.

Use (the module must be imported before lm-eval builds the model; ``rtc eval`` does that)::

    --model rtc-chat-completions --apply_chat_template \\
    --model_args model=Qwen/Qwen3-8B,base_url=http://127.0.0.1:8000/v1/chat/completions,rtc_format=qwen3
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from lm_eval.api.registry import register_model
from lm_eval.models.openai_completions import LocalChatCompletion

from rtc_metrics.detection import FormatDetectionError, detect_format
from rtc_metrics.formats import TraceFormat, get_format
from rtc_metrics.io import atomic_write

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

__all__ = ["ChatGeneration", "RTCChatCompletion", "ServerTrace", "raw_from_logprobs", "rebuild_generation"]

eval_logger = logging.getLogger(__name__)

#: Reply fields that carry a split-off trace, in the order they are read.
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(frozen=True)
class ServerTrace:
    """What the server did with one generation (one chat choice)."""

    #: True when the server returned the trace in a separate reasoning field.
    split: bool
    #: Which field held the trace (``"reasoning"`` or ``"reasoning_content"``), None when not split.
    reasoning_field: str | None
    #: True when the trace was open before the model's first token (a chat-template pre-fill such
    #: as ``<think>\\n``); None when the reply cannot tell and no ``prefilled=`` model arg was given.
    prefilled: bool | None
    #: Whether the rebuilt generation closes its trace (None when there is no trace at all).
    closed: bool | None
    #: True when the server sent ``content: null``.
    content_null: bool
    #: The choice's ``finish_reason`` ("stop", "length", ...).
    finish_reason: str | None
    #: True when the reply alone could not decide ``closed`` (split, null content, finish "stop":
    #: the model either closed its trace and stopped, or stopped inside it); ``closed`` then
    #: assumes the trace was closed, the reading vLLM's parsers give such replies.
    ambiguous: bool = False
    #: True when the text was rebuilt from per-token logprobs (exact), not from the fields.
    exact: bool = False


class ChatGeneration(str):
    """The rebuilt raw generation (a ``str``), carrying its :class:`ServerTrace` as ``.server``.

    lm-eval stores it in ``Instance.resps`` unchanged, so a task can read ``resp.server`` before
    logging turns responses into plain strings.
    """

    server: ServerTrace

    def __new__(cls, text: str, server: ServerTrace) -> ChatGeneration:
        obj = super().__new__(cls, text)
        obj.server = server
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # keeps `.server` through lm-eval's request cache
        return (ChatGeneration, (str(self), self.server))


def _reasoning_of(message: dict[str, Any]) -> tuple[str | None, str | None]:
    for name in REASONING_FIELDS:
        value = message.get(name)
        if value is not None:
            return value, name
    return None, None


def raw_from_logprobs(choice: dict[str, Any]) -> str | None:
    """The exact generated text from a choice's per-token logprobs, or None when unusable.

    vLLM lists every generated token there, the trace and special tokens included (with
    ``skip_special_tokens=false``), each with its UTF-8 ``bytes``. The final EOS or stop token is
    dropped and a matched stop string cut, as vLLM does for ``content``. The result is only
    trusted when it contains what the server put in ``reasoning``/``content``; servers that list
    only answer tokens (OpenAI) fail that check and fall back to the fields.
    """
    entries = ((choice.get("logprobs") or {}).get("content")) or []
    if not entries or any(not isinstance(e.get("bytes"), list) for e in entries):
        return None
    pieces = [bytes(e["bytes"]) for e in entries]
    stop_reason = choice.get("stop_reason")
    if choice.get("finish_reason") == "stop" and not isinstance(stop_reason, str):
        pieces = pieces[:-1]  # EOS (stop_reason None) or a stop token id
    text = b"".join(pieces).decode("utf-8", errors="replace")
    if isinstance(stop_reason, str) and stop_reason in text:
        text = text[: text.index(stop_reason)]
    message = choice.get("message") or {}
    reasoning, _ = _reasoning_of(message)
    content = message.get("content")
    if any(field and field.strip() not in text for field in (reasoning, content)):
        return None
    return text


def rebuild_generation(
    message: dict[str, Any],
    fmt: TraceFormat | str,
    finish_reason: str | None = None,
    prefilled: bool | None = None,
    raw: str | None = None,
) -> ChatGeneration:
    """Rebuild the model's raw output from one chat ``message`` (``choices[i].message``).

    ``prefilled`` is what the caller knows about the server's chat template: True when it
    pre-opens the trace, False when it never does, None to infer it from the reply (a closing
    delimiter with no opening one before it) and otherwise from ``fmt.prefixed``.
    ``raw`` is the exact generated text when known (:func:`raw_from_logprobs`); it is then used
    instead of the split fields, which removes the one ambiguity of split replies.

    The result always spells the opening delimiter when the model was inside a trace, because the
    logged prompt of a chat request is JSON messages, from which no parser could see a pre-fill.
    """
    fmt = get_format(fmt)
    content = message.get("content")
    reasoning, field = _reasoning_of(message)

    if raw is not None:
        gen = rebuild_generation({"content": raw}, fmt, finish_reason, prefilled)
        server = replace(gen.server, split=reasoning is not None, reasoning_field=field,
                         content_null=content is None, exact=True)  # fmt: skip
        return ChatGeneration(str(gen), server)

    if reasoning is not None:
        # The server split the trace off: it saw a closing delimiter, or ran out of budget (or
        # stopped) inside the trace. Only a "length" finish with no content tells the latter apart.
        ambiguous = content is None and finish_reason not in (None, "length")
        closed = not (content is None and finish_reason == "length")
        text = fmt.open + reasoning + (fmt.close + (content or "") if closed else "")
        server = ServerTrace(True, field, prefilled, closed, content is None, finish_reason, ambiguous)
        return ChatGeneration(text, server)

    if content is None:
        return ChatGeneration("", ServerTrace(False, None, prefilled, None, True, finish_reason))

    first_close = min((p for c in fmt.closes if (p := content.find(c)) >= 0), default=-1)
    first_open = min((p for o in fmt.opens if (p := content.find(o)) >= 0), default=-1)
    opened_in_text = first_open >= 0 and (first_close < 0 or first_open < first_close)
    if prefilled is None:
        # A close before any open means the template had opened the trace already; with no
        # delimiter at all, the family's usual template behaviour decides.
        prefilled = (first_close >= 0 and not opened_in_text) or (
            first_close < 0 and first_open < 0 and fmt.prefixed
        )
    closed = None if (first_close < 0 and first_open < 0 and not prefilled) else first_close >= 0
    text = content if opened_in_text or not prefilled else fmt.open + content
    return ChatGeneration(text, ServerTrace(False, None, prefilled, closed, False, finish_reason))


@register_model("rtc-chat-completions")
class RTCChatCompletion(LocalChatCompletion):
    """OpenAI-compatible chat backend that keeps reasoning traces (see the module docstring).

    Model args beyond ``local-chat-completions``'s (``model``, ``base_url``, ``num_concurrent``,
    ``max_retries``, ``timeout``, ``max_gen_toks``, ...):

    - ``rtc_format``: registry name of the delimiters (``rtc formats``); default: detected from
      ``model``.
    - ``prefilled``: True/False when known that the server's template pre-opens the trace;
      default None infers it per reply.
    - ``enable_thinking``: sent as ``chat_template_kwargs.enable_thinking`` (vLLM, SGLang).
    - ``skip_special_tokens``: default False, sent with ``spaces_between_special_tokens=False`` so
      special-token delimiters survive decoding on vLLM; ``None`` sends neither (strict servers).
    - ``max_stop_sequences``: the server's limit on ``stop`` (OpenAI: 4); more stops are an error,
      never silently dropped. Default None: no limit.
    - ``exact_raw``: ask for per-token logprobs and rebuild the text from them
      (:func:`raw_from_logprobs`; vLLM lists trace tokens there) — exact even for replies whose
      split fields are ambiguous; falls back to the fields per reply when unusable.
    - ``record_path``: JSONL file written per ``generate_until`` call with one line per sample
      (task, doc_id and the :class:`ServerTrace` fields).
    """

    def __init__(
        self,
        rtc_format: str | None = None,
        prefilled: bool | None = None,
        enable_thinking: bool | None = None,
        skip_special_tokens: bool | None = False,
        max_stop_sequences: int | None = None,
        record_path: str | None = None,
        exact_raw: bool = False,
        think_end_token: str | None = None,
        **kwargs: Any,
    ) -> None:
        if think_end_token is not None:
            raise ValueError(
                "rtc-chat-completions keeps the whole generation so traces can be measured; drop "
                f"think_end_token={think_end_token!r} from --model_args (the rtc tasks split the answer)."
            )
        super().__init__(**kwargs)
        self.rtc_format = self._resolve_format(rtc_format)
        if prefilled is not None and not isinstance(prefilled, bool):
            raise ValueError(f"prefilled must be true, false or None, got {prefilled!r}")
        self.prefilled = prefilled
        self.enable_thinking = enable_thinking
        self.skip_special_tokens = skip_special_tokens
        self.max_stop_sequences = None if max_stop_sequences is None else int(max_stop_sequences)
        self.record_path = record_path
        self.exact_raw = bool(exact_raw)

    def _resolve_format(self, name: str | None) -> TraceFormat:
        if name is not None:
            return get_format(name)
        try:
            return detect_format(self.model)
        except FormatDetectionError as e:
            raise ValueError(
                f"rtc-chat-completions cannot tell the reasoning delimiters of model {self.model!r} ({e}); "
                "add rtc_format=<name> to --model_args (`rtc formats` lists the names)."
            ) from None

    def _stop_list(self, until: str | list[str] | None) -> list[str]:
        """The task's stop sequences, all of them, and nothing added.

        No EOS string is appended: a chat server stops at the model's EOS token by itself, and an
        extra entry would only push the task's stops past a server's limit.
        """
        stop = [until] if isinstance(until, str) else list(until or [])
        if self.max_stop_sequences is not None and len(stop) > self.max_stop_sequences:
            raise ValueError(
                f"the task asks for {len(stop)} stop sequences {stop!r} but the server takes at most "
                f"{self.max_stop_sequences} (max_stop_sequences); shorten the task's generation_kwargs.until "
                "(rtc tasks use until: []) or raise max_stop_sequences if the server allows more."
            )
        return stop

    def _create_payload(
        self,
        messages: list[dict],
        generate: bool = False,
        gen_kwargs: dict | None = None,
        seed: int = 1234,
        eos: str | None = None,
        **kwargs: Any,
    ) -> dict:
        gen_kwargs = dict(gen_kwargs or {})
        stop = self._stop_list(gen_kwargs.pop("until", None))
        payload = super()._create_payload(messages, generate, gen_kwargs, seed, None, **kwargs)
        payload["stop"] = stop
        if self.skip_special_tokens is not None:  # vLLM sampling extensions
            payload["skip_special_tokens"] = self.skip_special_tokens
            payload["spaces_between_special_tokens"] = False
        if self.exact_raw:
            payload["logprobs"] = True
            payload["top_logprobs"] = 0
        if self.enable_thinking is not None:
            template_kwargs = dict(payload.get("chat_template_kwargs") or {})
            template_kwargs["enable_thinking"] = self.enable_thinking
            payload["chat_template_kwargs"] = template_kwargs
        return payload

    def parse_generations(self, outputs: dict | list[dict], **kwargs: Any) -> list[ChatGeneration]:
        results: list[ChatGeneration] = []
        for out in outputs if isinstance(outputs, list) else [outputs]:
            try:
                choices = sorted(out["choices"], key=lambda c: c["index"])
                results.extend(
                    rebuild_generation(
                        c["message"], self.rtc_format, c.get("finish_reason"), self.prefilled,
                        raw_from_logprobs(c) if self.exact_raw else None,
                    )
                    for c in choices
                )  # fmt: skip
            except (KeyError, TypeError) as e:
                # Same policy as lm-eval (a content-filtered reply), but say which field was missing.
                eval_logger.warning(f"could not read a chat reply ({e!r}): {json.dumps(out)[:300]}")
                results.append(ChatGeneration("", ServerTrace(False, None, None, None, True, None)))
        return results

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        for req in requests:  # fail once, before any request, rather than inside lm-eval's retries
            self._stop_list(req.args[1].get("until"))
        results = super().generate_until(requests, disable_tqdm=disable_tqdm)
        if self.record_path:
            seen: dict[tuple[str | None, int | None, int], int] = {}
            with atomic_write(self.record_path) as fh:
                for req, resp in zip(requests, results, strict=True):
                    # lm-eval repeats an Instance `repeats` times in a row; number the copies.
                    key = (req.task_name, req.doc_id, req.idx)
                    seen[key] = seen.get(key, -1) + 1
                    server = getattr(resp, "server", None)
                    row = {"task": req.task_name, "doc_id": req.doc_id, "repeat": seen[key]}
                    row.update(asdict(server) if server is not None else {"cached": True})
                    fh.write(json.dumps(row) + "\n")
        return results
