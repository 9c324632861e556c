"""SFT labels for the four loss-masking strategies, built from the format registry.

A record is rendered with the tokenizer's chat template, an empty trace is injected
where the strategy asks for one, and the text is tokenized ONCE with character offsets;
the sections (prompt / trace / response) found in the text are mapped onto tokens.

Strategies (presets of :class:`MaskSpec`):

- ``bare``: the chat template as it is, every token trained;
- ``empty``: an empty trace before the answer, every token trained;
- ``mask``: the empty trace injected and masked (both delimiters), the rest trained;
- ``respond``: prompt and trace masked, only the answer and end of turn trained.

How the text is built. ``P`` is the generation prompt (the chat without the answer,
``add_generation_prompt=True``): exactly what the model sees at inference. ``F`` is the
full chat. They share a prefix; after it, ``P`` may hold a tail ``F`` lacks (R1, QwQ and
OLMo-3 pre-open the trace there: ``<think>\\n``), and ``F`` may hold a header before the
answer (Qwen3's empty ``<think>\\n\\n</think>\\n\\n``, harmony's final-channel header).
Injection happens in the text, after ``P``, never in the message content, because R1 and
QwQ templates delete anything up to ``</think>`` from assistant content.

A token is trained only when every character it covers is in a trained section, so a
token straddling a boundary (a merge such as ``"\\n\\n"``) is masked; such boundaries are
listed in :attr:`Encoded.straddled` for audits.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from rtc_metrics.formats import TraceFormat, get_format
from rtc_metrics.parsing import _delimiters
from rtc_metrics.render_cache import SkeletonCache
from rtc_metrics.token_offsets import encode_texts

__all__ = [
    "EXTRA_PRESETS",
    "IGNORE_INDEX",
    "Encoded",
    "EncodingError",
    "Layout",
    "MaskSpec",
    "Section",
    "Strategy",
    "build_layout",
    "encode",
    "encode_example",
    "encode_many",
    "resolve_strategy",
]

#: Label of a token left out of the loss (PyTorch's cross-entropy ``ignore_index``).
IGNORE_INDEX = -100


class EncodingError(ValueError):
    """A record cannot be turned into training labels; the message says why and what to fix."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        #: Position of the failing chat in a batch (:func:`encode_many`), when known.
        self.index = index


class Section(str, Enum):
    """A part of the training text that a strategy trains or masks."""

    #: Everything before the trace (system, user turns, earlier turns, assistant header).
    PROMPT = "prompt"
    #: The final turn's trace, both delimiters included, with the whitespace after it.
    TRACE = "trace"
    #: The answer and the end of turn.
    RESPONSE = "response"
    #: The final turn's closing delimiter alone (inside TRACE); masked by ``close_only``.
    CLOSE = "close"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MaskSpec:
    """A strategy: whether to inject an empty trace, and which sections to mask."""

    #: True: an empty trace is placed before the answer unless the template rendered one.
    #: False: the chat template's text is used as it is.
    inject_trace: bool
    #: Sections left out of the loss.
    masked: frozenset[Section] = frozenset()
    #: Label for logs and files.
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "masked", frozenset(Section(s) for s in self.masked))
        if Section.RESPONSE in self.masked:
            raise ValueError("a strategy that masks the response trains no answer token; drop 'response'")

    @classmethod
    def parse(cls, text: str) -> MaskSpec:
        """``"bare"|"empty"|"mask"|"respond"`` or ``RENDER:SECTIONS``.

        RENDER is ``bare`` (template as is) or ``empty`` (empty trace injected); SECTIONS is
        a comma list of masked sections, e.g. ``empty:prompt`` or ``bare:prompt``.
        """
        text = text.strip().lower()
        if text in EXTRA_PRESETS:
            return EXTRA_PRESETS[text]
        if ":" not in text:
            try:
                return Strategy(text).spec
            except ValueError:
                names = ", ".join([*(s.value for s in Strategy), *EXTRA_PRESETS])
                raise ValueError(
                    f"unknown strategy {text!r}: use one of {names} "
                    "or RENDER:SECTIONS such as 'empty:prompt' (RENDER bare|empty; "
                    "SECTIONS from prompt, trace, close)"
                ) from None
        render, _, sections = text.partition(":")
        if render not in ("bare", "empty"):
            raise ValueError(f"strategy {text!r}: RENDER must be 'bare' or 'empty', got {render!r}")
        names = [s.strip() for s in sections.split(",") if s.strip()]
        valid = {s.value for s in Section}
        bad = [s for s in names if s not in valid]
        if bad:
            raise ValueError(f"strategy {text!r}: unknown section(s) {bad}; use prompt, trace, close")
        return cls(render == "empty", frozenset(Section(s) for s in names), name=text)


class Strategy(str, Enum):
    """The study's four strategies."""

    BARE = "bare"
    EMPTY = "empty"
    MASK = "mask"
    RESPOND = "respond"

    def __str__(self) -> str:
        return self.value

    @property
    def spec(self) -> MaskSpec:
        """The :class:`MaskSpec` this preset stands for."""
        return _PRESETS[self]


_PRESETS = {
    Strategy.BARE: MaskSpec(False, frozenset(), "bare"),
    Strategy.EMPTY: MaskSpec(True, frozenset(), "empty"),
    Strategy.MASK: MaskSpec(True, frozenset({Section.TRACE}), "mask"),
    Strategy.RESPOND: MaskSpec(True, frozenset({Section.PROMPT, Section.TRACE}), "respond"),
}


#: Presets beyond the study's four. ``close_only`` trains everything but the closing
#: delimiter (Nemotron's recipe for traces cut to a budget: the model is not taught where a
#: trace must end); the mask audit allows its open-without-close on purpose.
EXTRA_PRESETS = {"close_only": MaskSpec(True, frozenset({Section.CLOSE}), "close_only")}


def resolve_strategy(strategy: str | Strategy | MaskSpec) -> MaskSpec:
    """The :class:`MaskSpec` for a preset name, a :class:`Strategy` or a spec."""
    if isinstance(strategy, MaskSpec):
        return strategy
    if isinstance(strategy, Strategy):
        return strategy.spec
    if isinstance(strategy, str):
        return MaskSpec.parse(strategy)
    raise TypeError(f"strategy must be a name, a Strategy or a MaskSpec, got {type(strategy).__name__}")


#: The text of an empty trace between and after the delimiters, per family. The default
#: is what Qwen3's template renders (``<think>\n\n</think>\n\n``); harmony puts nothing in
#: an empty analysis message and restarts the assistant header for the final channel.
_EMPTY_TRACE: dict[str, tuple[str, str]] = {"gpt_oss": ("", "<|start|>assistant")}
_DEFAULT_EMPTY_TRACE = ("\n\n", "\n\n")


@dataclass(frozen=True)
class Layout:
    """Where the sections lie in the training text of one record (character offsets)."""

    #: The text that is tokenized and trained.
    text: str
    #: ``text[:prompt_len]`` is the prompt side; with an injected or rendered trace it equals
    #: the generation prompt the model sees at inference.
    prompt_len: int
    #: ``(start, end)`` of the final turn's opening delimiter, or None when there is no trace.
    open_span: tuple[int, int] | None
    #: ``(start, end)`` of its closing delimiter, or None.
    close_span: tuple[int, int] | None
    #: Where the response (answer, then end of turn) starts.
    response_start: int
    #: True when the empty trace was added by rtc (not rendered by the template).
    injected: bool

    @property
    def trace_span(self) -> tuple[int, int] | None:
        """The trace section: opening delimiter to the response start."""
        return None if self.open_span is None else (self.open_span[0], self.response_start)

    def section_spans(self) -> dict[Section, tuple[int, int]]:
        """``{section: (start, end)}``; the trace is absent when the text has none."""
        prompt_end = self.open_span[0] if self.open_span else self.response_start
        spans = {Section.PROMPT: (0, prompt_end)}
        if self.open_span is not None:
            spans[Section.TRACE] = (self.open_span[0], self.response_start)
        spans[Section.RESPONSE] = (self.response_start, len(self.text))
        return spans


@dataclass(frozen=True)
class Encoded:
    """One encoded record with what is needed to inspect or audit it."""

    input_ids: list[int]
    #: ``input_ids`` with masked positions set to :data:`IGNORE_INDEX`.
    labels: list[int]
    #: The tokens of ``layout.text``: a ``tokenizers.Encoding``, or for byte-level BPE a
    #: :class:`~rtc_metrics.token_offsets.ByteOffsets` (``char_to_token``, ``offsets``).
    encoding: Any
    layout: Layout
    spec: MaskSpec
    #: Section boundaries and the end of the generation prompt (character positions) that
    #: fall inside a token: that token is masked, and the prompt's tokens in training may
    #: differ from those the model sees at inference.
    straddled: tuple[int, ...] = field(default=())

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of every token in ``layout.text``."""
        return self.encoding.offsets

    def as_dict(self) -> dict[str, list[int]]:
        """``{"input_ids", "labels", "attention_mask"}`` as lists of ints."""
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "attention_mask": [1] * len(self.input_ids),
        }


# --- rendering --------------------------------------------------------------------------


def _chat_template(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    if not template:
        raise EncodingError(
            "the tokenizer has no chat template; set tokenizer.chat_template (a Jinja string) "
            "or use a chat model's tokenizer"
        )
    return template


#: Renderers by (template, template variables): probing costs two renders.
_RENDERERS: dict[tuple[str, str], _Renderer] = {}


_SENTINEL = "RTC-ANSWER-7f3a"


@dataclass(frozen=True)
class _Renderer:
    """Renders chats as ``tokenizer.apply_chat_template(tokenize=False)`` would."""

    template: str
    kwargs: Mapping[str, Any]
    #: What ``add_generation_prompt=True`` appends to a chat (from a probe), or None when
    #: the template does not simply append it.
    generation_tail: str | None = None
    #: What the template writes between the previous turn and the final answer, when a
    #: multi-turn probe showed that ``render(chat[:-1]) + generation_tail`` equals the full
    #: render cut before that header (then one render per record suffices); else None.
    answer_header: str | None = None
    #: What the template writes after the final answer (end of turn), from the probe.
    answer_suffix: str | None = None
    #: Verified renders per turn structure, so most records skip the template (render_cache).
    skeletons: SkeletonCache = field(default_factory=SkeletonCache, compare=False, repr=False)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, template_kwargs: Mapping[str, Any] | None) -> _Renderer:
        kwargs = {**getattr(tokenizer, "special_tokens_map", {}), **(template_kwargs or {})}
        template = _chat_template(tokenizer)
        key = (template, json.dumps(kwargs, sort_keys=True, default=str))
        cached = _RENDERERS.get(key)
        if cached is None:
            cached = _RENDERERS[key] = cls._probe(template, kwargs)
            while len(_RENDERERS) > 32:  # a few tokenizers per process; drop the oldest
                del _RENDERERS[next(iter(_RENDERERS))]
        return cached

    @classmethod
    def _probe(cls, template: str, kwargs: dict[str, Any]) -> _Renderer:
        renderer = cls(template, kwargs)
        user = [{"role": "user", "content": "Hi"}]
        try:
            bare, opened = renderer.render([user], False)[0], renderer.render([user], True)[0]
        except Exception:  # templates raise anything on a probe; fall back to no tail
            return renderer
        if not opened.startswith(bare):
            return renderer
        tail = opened[len(bare):]
        header = suffix = None
        chat = [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Q1"},
                {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                {"role": "assistant", "content": _SENTINEL}]
        try:
            one = renderer.render([[*user, {"role": "assistant", "content": _SENTINEL}]], False)[0]
            full, prompt = renderer.render([chat], False)[0], renderer.render([chat[:-1]], True)[0]
        except Exception:  # e.g. a template without system turns: keep two renders per record
            return cls(template, kwargs, tail)
        if one.startswith(bare) and _SENTINEL in one:
            suffix = one[one.index(_SENTINEL) + len(_SENTINEL):]
            candidate = one[len(bare) : one.index(_SENTINEL)]
            cut = full.find(_SENTINEL) - len(candidate)
            if cut >= 0 and full.startswith(candidate, cut) and full[:cut] + tail == prompt:
                header = candidate
        return cls(template, kwargs, tail, header, suffix)

    def prompt_from_full(self, full: str, answer_pos: int, answer: str) -> str | None:
        """The generation prompt, cut from the full render, or None when that is not safe.

        ``answer_pos`` is where the stripped answer starts; leading whitespace of the answer
        that the template kept lies between the header and it.
        """
        if self.answer_header is None or self.generation_tail is None:
            return None
        lead = answer[: len(answer) - len(answer.lstrip())]
        for kept in range(len(lead), -1, -1):
            cut = answer_pos - kept - len(self.answer_header)
            if (cut >= 0 and full.startswith(self.answer_header, cut)
                    and full[answer_pos - kept : answer_pos] == lead[len(lead) - kept :]):
                return full[:cut] + self.generation_tail
        return None

    def render(self, chats: Sequence[Sequence[Mapping[str, Any]]], add_generation_prompt: bool) -> list[str]:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            list(chats), chat_template=self.template, add_generation_prompt=add_generation_prompt,
            **self.kwargs,
        )
        return rendered


def _common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix, by bisection over C-level slice compares."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _check_messages(messages: Any, fmt: TraceFormat) -> str:
    """Validate one chat; return the final answer."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or len(messages) < 2:
        raise EncodingError("a record needs a chat of at least two messages ending with the assistant answer")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise EncodingError(f"message {i} must be an object with a 'role' string")
        if not isinstance(message.get("content"), str):
            raise EncodingError(f"message {i} ({message['role']}) must have 'content' as a string")
    if messages[-1]["role"] != "assistant":
        raise EncodingError(
            f"the last message must be the assistant answer to train on, got role {messages[-1]['role']!r}"
        )
    answer = messages[-1]["content"]
    if not answer.strip():
        raise EncodingError("the assistant answer is blank: the record would train no answer token")
    for delim in (*fmt.opens, *fmt.closes):
        if delim in answer:
            raise EncodingError(
                f"the assistant answer contains the trace delimiter {delim!r}; these strategies train on "
                "answer-only data, so remove the trace from the answer (the template may strip it)"
            )
    return answer


def _locate_answer(full: str, answer: str, suffix: str | None = None) -> int:
    """Where the final answer's text (stripped) starts in ``full``.

    With the template's end-of-answer ``suffix`` known, the search stops before it, so an
    answer such as ``"x"`` is not found inside ``<|endoftext|>``.
    """
    core = answer.strip()
    end = len(full) - len(suffix) if suffix and full.endswith(suffix) else len(full)
    pos = full.rfind(core, 0, end)
    if pos < 0:
        raise EncodingError(
            "the chat template changed the assistant answer when rendering it, so its position "
            "in the text is unknown; check the template or the answer text"
        )
    return pos


@lru_cache(maxsize=64)
def _empty_trace(fmt: TraceFormat) -> tuple[str, str]:
    return _EMPTY_TRACE.get(fmt.name, _DEFAULT_EMPTY_TRACE)


def _skip_space(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    return pos


def _layout(
    prompt: str, full: str, answer_pos: int, fmt: TraceFormat, inject: bool, generation_tail: str | None
) -> Layout:
    """The training text and its sections for one chat (see the module docstring)."""
    opener, closer = _delimiters(fmt)
    # An answer that starts like the prompt's tail ("<b>" vs "<think>") must not extend the
    # shared prefix into the answer.
    shared = min(_common_prefix_len(prompt, full), answer_pos)
    # The final turn starts where the generation prompt does; traces before it belong to
    # earlier turns and are never taken.
    turn_start = shared
    if generation_tail is not None and prompt.endswith(generation_tail):
        turn_start = min(shared, len(prompt) - len(generation_tail))

    # A trace the template rendered itself (Qwen3's empty block on the last turn), or one
    # closed inside the generation prompt (enable_thinking=False): use it as it is.
    close = _last(closer, full, turn_start, answer_pos)
    if close is not None:
        opening = _last(opener, full, turn_start, close[0])
        if opening is not None:
            return Layout(full, shared, opening, close, _skip_space(full, close[1]), injected=False)

    if not inject:
        # The template as it is; a pre-opening tail of the generation prompt is not in it.
        return Layout(full, shared, None, None, shared, injected=False)

    body, after = _empty_trace(fmt)
    pre_open = _last(opener, prompt, turn_start, len(prompt))
    if pre_open is not None and _last(closer, prompt, pre_open[1], len(prompt)) is None:
        # The generation prompt pre-opened the trace: complete it as an empty trace, and
        # count its opening delimiter (in the prompt) as part of the trace.
        # Nothing more is added right after prompt whitespace ("<think>\n" + "</think>"), so
        # no token merges across the end of the prompt ("\n" + "\n" -> "\n\n"): the prompt
        # then tokenizes in training exactly as at inference.
        seeded = prompt[pre_open[1]:]
        rest = "" if seeded and seeded[-1].isspace() else body
        insert = rest + fmt.close + after
        open_span = pre_open
    else:
        insert = fmt.open + body + fmt.close + after
        open_span = (len(prompt), len(prompt) + len(fmt.open))
    text = prompt + insert + full[shared:]
    close_start = len(prompt) + insert.rindex(fmt.close)
    close_span = (close_start, close_start + len(fmt.close))
    return Layout(text, len(prompt), open_span, close_span, _skip_space(text, close_span[1]), injected=True)


def _last(delim: Any, text: str, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of the last occurrence of ``delim`` within ``text[start:end]``."""
    found = None
    pos = start
    while True:
        s, e = delim.find(text, pos, end)
        if s < 0:
            return found
        found = (s, e)
        pos = e


def build_layout(
    messages: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    strategy: str | Strategy | MaskSpec = Strategy.MASK,
    fmt: TraceFormat | str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> Layout:
    """The training text of one chat and where its sections lie (no tokenization)."""
    spec = resolve_strategy(strategy)
    fmt = _resolve_format(tokenizer, fmt)
    answer = _check_messages(messages, fmt)
    renderer = _Renderer.for_tokenizer(tokenizer, template_kwargs)
    full = renderer.render([messages], False)[0]
    answer_pos = _locate_answer(full, answer, renderer.answer_suffix)
    prompt = renderer.render([messages[:-1]], True)[0]
    return _layout(prompt, full, answer_pos, fmt, spec.inject_trace, renderer.generation_tail)


# --- tokenization and labels ------------------------------------------------------------


def _backend(tokenizer: Any) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncodingError(
            "label building needs a fast tokenizer (character offsets); load it with "
            "AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    return backend


class _OffsetList:
    """Character-to-token lookups over a plain offsets list (gaps allowed)."""

    def __init__(self, offsets: Sequence[tuple[int, int]]) -> None:
        self.offsets = list(offsets)

    def char_to_token(self, pos: int) -> int | None:
        i = bisect.bisect_right([o[1] for o in self.offsets], pos)
        return i if i < len(self.offsets) and self.offsets[i][0] <= pos else None


def _token_span(tokens: Any, lo: int, hi: int) -> tuple[int, int]:
    """``[first, last)`` token indices overlapping characters ``[lo, hi)``."""
    first = tokens.char_to_token(lo)
    if first is None:  # lo falls in a gap between tokens: the first token ending after it
        first = bisect.bisect_right([o[1] for o in tokens.offsets], lo)
    last = tokens.char_to_token(hi - 1)
    last = bisect.bisect_left([o[0] for o in tokens.offsets], hi) if last is None else last + 1
    return first, last


def _labels(ids: list[int], tokens: Any, masked: Iterable[tuple[int, int]]) -> list[int]:
    """``ids`` with every token that overlaps a masked character range set to IGNORE_INDEX.

    ``tokens`` answers ``char_to_token`` (a tokenizers Encoding, in Rust, without building
    Python lists of offsets) and has ``offsets`` for characters no token covers.
    """
    labels = list(ids)
    for lo, hi in masked:
        if hi > lo:
            first, last = _token_span(tokens, lo, hi)
            if last > first:
                labels[first:last] = [IGNORE_INDEX] * (last - first)
    return labels


def _straddled(tokens: Any, boundaries: Iterable[int]) -> tuple[int, ...]:
    """Boundaries that fall strictly inside one token."""
    out = []
    for b in boundaries:
        inside = tokens.char_to_token(b)
        if inside is not None and b > 0 and tokens.char_to_token(b - 1) == inside:
            out.append(b)
    return tuple(out)


def _resolve_format(tokenizer: Any, fmt: TraceFormat | str | None) -> TraceFormat:
    if fmt is not None:
        return get_format(fmt)
    return _detect_cached(_chat_template(tokenizer), getattr(tokenizer, "name_or_path", None) or "")


@lru_cache(maxsize=32)
def _detect_cached(template: str, name: str) -> TraceFormat:
    """Detection per template (rendering it is too slow to repeat per record)."""
    from rtc_metrics.detection import FormatDetectionError, detect_format

    try:
        return detect_format(template)
    except FormatDetectionError:
        if not name:
            raise
        return detect_format(name)


def encode(
    messages: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    strategy: str | Strategy | MaskSpec,
    fmt: TraceFormat | str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> Encoded:
    """Like :func:`encode_example`, keeping the text, offsets and sections (for inspection)."""
    return encode_many([messages], tokenizer, strategy, fmt, template_kwargs)[0]


def encode_many(
    chats: Sequence[Sequence[Mapping[str, Any]]],
    tokenizer: Any,
    strategy: str | Strategy | MaskSpec,
    fmt: TraceFormat | str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[Encoded]:
    """Encode many chats; templates are rendered and texts tokenized in batches.

    Raises EncodingError naming the index of the first chat that cannot be encoded.
    """
    spec = resolve_strategy(strategy)
    fmt = _resolve_format(tokenizer, fmt)
    backend = _backend(tokenizer)
    renderer = _Renderer.for_tokenizer(tokenizer, template_kwargs)
    answers = []
    for i, messages in enumerate(chats):
        try:
            answers.append(_check_messages(messages, fmt))
        except EncodingError as exc:
            raise EncodingError(f"record {i}: {exc}", index=i) from None
    fulls = _render_cached(renderer, chats, False)
    positions: list[int] = []
    prompts: list[str | None] = []
    for i, (full, answer) in enumerate(zip(fulls, answers, strict=True)):
        try:
            positions.append(_locate_answer(full, answer, renderer.answer_suffix))
        except EncodingError as exc:
            raise EncodingError(f"record {i}: {exc}", index=i) from None
        prompts.append(renderer.prompt_from_full(full, positions[-1], answer))
    # Render the generation prompt only where it could not be cut from the full render.
    missing = [i for i, p in enumerate(prompts) if p is None]
    if missing:
        rendered = _render_cached(renderer, [chats[i][:-1] for i in missing], True)
        for i, prompt in zip(missing, rendered, strict=True):
            prompts[i] = prompt
    layouts = []
    for i, (prompt, full, pos) in enumerate(zip(prompts, fulls, positions, strict=True)):
        try:
            layouts.append(_layout(prompt, full, pos, fmt, spec.inject_trace, renderer.generation_tail))
        except EncodingError as exc:
            raise EncodingError(f"record {i}: {exc}", index=i) from None
    # Tokenized in one parallel batch (offsets derived from token bytes where exact).
    encodings = encode_texts(backend, [lay.text for lay in layouts])
    out = []
    for layout, (ids, enc) in zip(layouts, encodings, strict=True):
        spans = layout.section_spans()
        masked = [spans[s] for s in spec.masked if s in spans]
        if Section.CLOSE in spec.masked and layout.close_span is not None:
            masked.append(layout.close_span)
        # Also the end of the generation prompt, which may lie inside the trace.
        cuts = {span[0] for span in spans.values()} | {layout.prompt_len}
        boundaries = sorted(b for b in cuts if 0 < b < len(layout.text))
        out.append(Encoded(ids, _labels(ids, enc, masked), enc, layout, spec, _straddled(enc, boundaries)))
    return out


def _render_cached(renderer: _Renderer, chats: Sequence[Sequence[Mapping[str, Any]]], gen: bool) -> list[str]:
    """Like :func:`_render_all`, filling verified skeletons where safe (see render_cache)."""
    texts = renderer.skeletons.fill(renderer.render, renderer.template, renderer.kwargs, chats, gen)
    slow = [i for i, text in enumerate(texts) if text is None]
    if slow:
        try:
            rendered = renderer.render([chats[i] for i in slow], gen)
        except Exception:  # let _render_all find and name the failing chat by its index
            return _render_all(renderer, chats, gen)
        for i, text in zip(slow, rendered, strict=True):
            texts[i] = text
    return texts  # type: ignore[return-value]  # every None was filled above


def _render_all(renderer: _Renderer, chats: Sequence[Sequence[Mapping[str, Any]]], gen: bool) -> list[str]:
    """Render in one batch; when the template raises, find and name the failing chat."""
    try:
        return renderer.render(chats, gen)
    except Exception:  # a template error (e.g. roles must alternate): locate it below
        for i, chat in enumerate(chats):
            try:
                renderer.render([chat], gen)
            except Exception as exc:
                hint = (" (this template may expect content as a list of {\"type\": \"text\"} parts)"
                        if "attribute 'text'" in str(exc) or "attribute 'type'" in str(exc) else "")
                raise EncodingError(f"record {i}: the chat template failed: {exc}{hint}", index=i) from None
        raise


def encode_example(
    messages: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    strategy: str | Strategy | MaskSpec,
    fmt: TraceFormat | str | None = None,
) -> dict[str, list[int]]:
    """Tokenize one chat for SFT with the labels of ``strategy``.

    ``messages`` is a chat ending with the assistant answer; ``strategy`` is ``"bare"``,
    ``"empty"``, ``"mask"``, ``"respond"``, a :class:`Strategy`, a :class:`MaskSpec` or
    ``"RENDER:SECTIONS"``; ``fmt`` defaults to ``detect_format(tokenizer)``. Returns
    ``{"input_ids", "labels", "attention_mask"}`` (lists of ints; labels -100 where masked).
    """
    return encode(messages, tokenizer, strategy, fmt).as_dict()
