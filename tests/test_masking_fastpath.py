"""The fast paths of label building (render skeletons, offsets from token bytes) change nothing.

Every check compares against the slow path (the chat template rendered per record, the
tokenizer's own offsets) on real chat templates, over randomized and adversarial records.
"""

from __future__ import annotations

import random

import pytest
from sft_support import TOKENIZER_SPECS, make_tokenizer, require_templates

from rtc_metrics import token_offsets
from rtc_metrics.masking import EncodingError, _render_cached, _Renderer, _resolve_format, encode_many
from rtc_metrics.render_cache import SkeletonCache, _screen
from rtc_metrics.token_offsets import ByteOffsets, encode_texts

TEMPLATES = sorted(TOKENIZER_SPECS)

STRUCTURES = [
    ("user", "assistant"),
    ("system", "user", "assistant"),
    ("user", "assistant", "user", "assistant"),
    ("system", "user", "assistant", "user", "assistant"),
]

WORDS = ["the", "answer", "is", "42", "step", "x", "Thinking", "user", "assistant", "system", "a+b=c"]
#: Contents that touch template logic or the fast paths: whitespace at the edges, every
#: template's markers, sentinel look-alikes, Jinja syntax, multi-byte characters.
ADVERSARIAL = [
    " lead", "trail ", "\n\nboth\n", "\t", "<think>", "</think>", "<think>\nplan\n</think>\n\nanswer",
    "<|im_end|>", "<|im_start|>assistant\n", "<tool_response>r</tool_response>", "<|channel|>final",
    "<|end|>", "<|start|>assistant", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "[THINK]", "RTCSLOT0Z",
    "{{ messages }}", "{% if x %}", "’s — 数学 ½ 😀", "\u00a0nbsp\u00a0", "user", "",
]


def _content(rng: random.Random) -> str:
    parts = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # a third of contents are adversarial
        parts.insert(rng.randint(0, len(parts)), rng.choice(ADVERSARIAL))
    return rng.choice([" ", "\n", ""]).join(parts)


def _chats(n: int, seed: int) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    return [[{"role": r, "content": _content(rng)} for r in rng.choice(STRUCTURES)] for _ in range(n)]


@pytest.fixture(autouse=True)
def _templates():
    require_templates()


@pytest.mark.parametrize("name", TEMPLATES)
def test_skeleton_renders_equal_the_template(name):
    tok = make_tokenizer(name)
    renderer = _Renderer.for_tokenizer(tok, None)
    chats = _chats(120, seed=len(name))
    for gen, batch in ((False, chats), (True, [c[:-1] for c in chats])):
        # Record by record: a structure the template rejects (gpt-oss) fails alike.
        expected = []
        for chat in batch:
            try:
                expected.append(renderer.render([chat], gen)[0])
            except Exception:
                expected.append(None)
        ok = [c for c, e in zip(batch, expected, strict=True) if e is not None]
        assert _render_cached(renderer, ok, gen) == [e for e in expected if e is not None]
    filled = renderer.skeletons.fill(renderer.render, renderer.template, renderer.kwargs, chats, False)
    screen = _screen(renderer.template, renderer.kwargs)
    plain = [c for c in chats if all(screen.allows(m["content"]) for m in c)]
    # The check above is only worth something if the fast path served most records the
    # screen lets through (a structure can still fail its probes: gpt-oss with a system turn).
    hits = sum(t is not None for t in filled)
    assert hits >= len(plain) // 2 > 0, (hits, len(plain))


def _encode_all(chats, tok, strategy):
    """encode_many over ``chats``, dropping records it rejects; the rejected indices too."""
    kept, rejected = list(range(len(chats))), []
    while True:
        try:
            return encode_many([chats[i] for i in kept], tok, strategy), rejected
        except EncodingError as exc:
            assert exc.index is not None
            rejected.append(kept.pop(exc.index))


def _slow(monkeypatch):
    monkeypatch.setattr(SkeletonCache, "fill", lambda self, render, template, kwargs, chats, gen: [None] * len(chats))
    monkeypatch.setattr(token_offsets, "_table", lambda backend: None)


@pytest.mark.parametrize("name", TEMPLATES)
def test_fast_labels_equal_slow_labels(name, monkeypatch):
    tok = make_tokenizer(name)
    fmt = _resolve_format(tok, None)
    chats = _chats(150, seed=7 + len(name))
    # Answers must be trainable (non-blank, no trace delimiter); the rest stays adversarial.
    for chat in chats:
        if not chat[-1]["content"].strip() or any(d in chat[-1]["content"] for d in (*fmt.opens, *fmt.closes)):
            chat[-1]["content"] = "The answer is 4."
    for strategy in ("mask", "respond", "bare"):
        with monkeypatch.context() as m:
            _slow(m)
            slow, slow_rejected = _encode_all(chats, tok, strategy)
        fast, fast_rejected = _encode_all(chats, tok, strategy)
        assert fast_rejected == slow_rejected
        assert [e.input_ids for e in fast] == [e.input_ids for e in slow]
        assert [e.labels for e in fast] == [e.labels for e in slow]
        assert [e.layout for e in fast] == [e.layout for e in slow]
        assert [e.straddled for e in fast] == [e.straddled for e in slow]
        assert [e.offsets for e in fast] == [[tuple(o) for o in e.offsets] for e in slow]
    assert sum(isinstance(e.encoding, ByteOffsets) for e in fast) > len(fast) // 2


def test_screen_reads_needles_from_the_template():
    qwen3 = _screen(make_tokenizer("Qwen__Qwen3-0.6B").chat_template, {})
    assert {"<think>", "</think>", "<tool_response>", "</tool_response>"} <= set(qwen3.needles)
    assert qwen3.allows("plain text") is True
    assert qwen3.allows(" edge") is None  # allowed only if the structure's probes allow it
    assert qwen3.allows("a </think> b") is False
    assert qwen3.allows("") is False
    # A test against a variable: every constant of the template becomes a needle.
    unsure = _screen("{% for m in messages %}{{ m.content.split(sep)[0] ~ '[END]' }}{% endfor %}", {"sep": "##"})
    assert "[END]" in unsure.needles and "##" in unsure.needles
    stripping = _screen("{% for m in messages %}{{ m.content.strip('*') }}{% endfor %}", {})
    assert stripping.edge_chars == {"*"} and stripping.allows("*bold") is False


def _render_fn(template):
    from transformers.utils.chat_template_utils import render_jinja_template

    def render(chats, gen):
        return render_jinja_template(list(chats), chat_template=template, add_generation_prompt=gen)[0]

    return render


@pytest.mark.parametrize(
    ("template", "content", "cached"),
    [
        # trim: edge whitespace changes the text, so such contents take the template
        ("{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}", " hi ", False),
        ("{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}", "hi", True),
        # verbatim: edge whitespace is fine
        ("{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}", " hi ", True),
        # content transformed: never cached
        ("{% for m in messages %}{{ m.content | upper }}{% endfor %}", "hi", False),
        ("{% for m in messages %}{{ m.content | tojson }}{% endfor %}", "hi", False),
        ("{% for m in messages %}{{ m.content[:3] }}{% endfor %}", "hi", False),
        # content length decides: the probes differ in length
        ("{% for m in messages %}{% if m.content | length > 3 %}L{% endif %}{{ m.content }}{% endfor %}",
         "hi", False),
        # a needle in the content
        ("{% for m in messages %}{{ m.content.split('|')[-1] }}{% endfor %}", "a|b", False),
    ],
)
def test_fallback_triggers(template, content, cached):
    chat = [{"role": "user", "content": content}, {"role": "assistant", "content": "ok"}]
    render = _render_fn(template)
    filled = SkeletonCache().fill(render, template, {}, [chat], False)[0]
    assert (filled is not None) == cached
    if filled is not None:
        assert filled == render([chat], False)[0]


def test_extra_message_keys_take_the_template():
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    renderer = _Renderer.for_tokenizer(tok, None)
    chat = [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "reasoning_content": "because"}]
    assert renderer.skeletons.fill(renderer.render, renderer.template, renderer.kwargs, [chat], False) == [None]
    assert _render_cached(renderer, [chat], False) == renderer.render([chat], False)


def _check_offsets(backend, texts):
    """encode_texts agrees with the tokenizer on every text; returns how many were derived."""
    derived = 0
    for text, (ids, tokens) in zip(texts, encode_texts(backend, texts), strict=True):
        enc = backend.encode(text, add_special_tokens=False)
        assert ids == enc.ids
        assert [tuple(o) for o in tokens.offsets] == [tuple(o) for o in enc.offsets], text
        for pos in range(len(text)):
            assert tokens.char_to_token(pos) == enc.char_to_token(pos)
        derived += isinstance(tokens, ByteOffsets)
    return derived


@pytest.mark.parametrize("name", TEMPLATES)
def test_byte_offsets_equal_tokenizer_offsets(name):
    rng = random.Random(3)
    texts = [_content(rng) + rng.choice(["", "", "’", " é"]) for _ in range(200)] + ["", "a", "<think>", "’"]
    # These tiny vocabularies split multi-byte characters; the tokenizer then widens both
    # tokens' offsets to the whole character, and so do the derived offsets.
    assert _check_offsets(make_tokenizer(name).backend_tokenizer, texts) == len(texts)


def test_byte_offsets_with_whole_multibyte_tokens():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=["<|x|>"])
    tok.train_from_iterator(["café — it’s ½ 数学 naïve ok 😀"] * 50, trainer)
    # Whole-character tokens (café, —, ’) and split ones (😀, 数) next to an added token.
    texts = ["café — it’s", "it’s café<|x|>café — it’s", "naïve 数学 ½<|x|>ok", "😀 café", "数", "zebra ’<|x|>"]
    assert _check_offsets(tok, texts) == len(texts)


def test_trimmed_offsets_disable_byte_offsets():
    """A post-processor that trims offsets makes the tokenizer's offsets differ: not used."""
    from tokenizers import processors

    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    backend = tok.backend_tokenizer.__class__.from_str(tok.backend_tokenizer.to_str())
    backend.post_processor = processors.ByteLevel(trim_offsets=True)
    text = "a b  c\n d"
    (_ids, tokens), = encode_texts(backend, [text])
    assert not isinstance(tokens, ByteOffsets)
    assert tokens.offsets == backend.encode(text, add_special_tokens=False).offsets
