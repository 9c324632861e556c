"""Labels of the four strategies, token by token, on real chat templates."""

from __future__ import annotations

import types

import pytest
from sft_support import make_tokenizer, require_templates

from rtc_metrics import encode_example
from rtc_metrics.masking import (
    IGNORE_INDEX,
    EncodingError,
    MaskSpec,
    Section,
    Strategy,
    _labels,
    _OffsetList,
    _straddled,
    encode,
    encode_many,
    resolve_strategy,
)

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "The answer is 4."},
]


CHATS = [
    MESSAGES,
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\n\nHello there.\n"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "And 3*3?"}, {"role": "assistant", "content": "9"}],
    # "x" also occurs in end-of-turn markers such as <|endoftext|>.
    [{"role": "system", "content": "S"}, {"role": "user", "content": "x"},
     {"role": "assistant", "content": "x"}],
]

# template: (format, text injected right after the generation prompt for `empty`, the trace
# that `mask` leaves out of the loss, the answer and end of turn that `respond` trains)
CASES = {
    "Qwen__Qwen3-0.6B": ("qwen3", "<think>\n\n</think>\n\n", "<think>\n\n</think>\n\n",
                         "The answer is 4.<|im_end|>\n"),
    "Qwen__QwQ-32B": ("qwq", "</think>\n\n", "<think>\n</think>\n\n", "The answer is 4.<|im_end|>\n"),
    "deepseek-ai__DeepSeek-R1-Distill-Qwen-32B": ("deepseek_r1", "</think>\n\n", "<think>\n</think>\n\n",
                                                  "The answer is 4.<｜end▁of▁sentence｜>"),
    "allenai__Olmo-3-Think_olmo_thinker": ("olmo3", "\n\n</think>\n\n", "<think>\n\n</think>\n\n",
                                           "The answer is 4.<|endoftext|>"),
    "openai__gpt-oss-120b": ("gpt_oss", "<|channel|>analysis<|message|><|end|>",
                             "<|channel|>analysis<|message|><|end|>",
                             "<|start|>assistant<|channel|>final<|message|>The answer is 4.<|return|>"),
}


@pytest.fixture(autouse=True)
def _templates():
    require_templates()


def _prompt(tok, messages=MESSAGES, **kwargs):
    return tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True, **kwargs)


def _expected_masked(offsets, lo, hi):
    """Per token: does it overlap the character range [lo, hi)?"""
    return [s < hi and e > lo for s, e in offsets]


def _split(enc):
    text = enc.layout.text
    pieces = [text[s:e] for s, e in enc.offsets]
    trained = "".join(p for p, lab in zip(pieces, enc.labels, strict=True) if lab != IGNORE_INDEX)
    masked = "".join(p for p, lab in zip(pieces, enc.labels, strict=True) if lab == IGNORE_INDEX)
    return trained, masked


@pytest.mark.parametrize("template", list(CASES))
def test_bare_is_the_template_as_is_all_trained(template):
    tok = make_tokenizer(template)
    enc = encode(MESSAGES, tok, "bare")
    full = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert enc.layout.text == full
    ids = tok.apply_chat_template(MESSAGES, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert enc.input_ids == list(ids)
    assert enc.labels == enc.input_ids
    assert not enc.layout.injected


def test_bare_qwen3_keeps_the_templates_empty_trace_and_r1_has_none():
    qwen = encode(MESSAGES, make_tokenizer("Qwen__Qwen3-0.6B"), "bare").layout.text
    assert qwen.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer is 4.<|im_end|>\n")
    r1 = encode(MESSAGES, make_tokenizer("deepseek-ai__DeepSeek-R1-Distill-Qwen-32B"), "bare").layout.text
    assert "<think>" not in r1 and r1.endswith("<｜Assistant｜>The answer is 4.<｜end▁of▁sentence｜>")


@pytest.mark.parametrize("template", list(CASES))
def test_empty_injects_after_the_generation_prompt_all_trained(template):
    tok = make_tokenizer(template)
    _, injected, _, answer_eot = CASES[template]
    enc = encode(MESSAGES, tok, "empty")
    assert enc.layout.text == _prompt(tok) + injected + answer_eot
    assert enc.labels == enc.input_ids
    # The exact text is what is tokenized (one tokenization, same as the tokenizer's own).
    assert enc.input_ids == tok(enc.layout.text, add_special_tokens=False)["input_ids"]
    assert enc.layout.text[: enc.layout.prompt_len] == _prompt(tok)


@pytest.mark.parametrize("template", list(CASES))
@pytest.mark.parametrize("strategy", ["empty", "mask", "respond"])
def test_prompt_tokens_in_training_equal_those_at_inference(template, strategy):
    tok = make_tokenizer(template)
    for chat in [MESSAGES, *CHATS]:
        enc = encode(chat, tok, strategy)
        prompt_ids = tok(_prompt(tok, chat), add_special_tokens=False)["input_ids"]
        assert enc.input_ids[: len(prompt_ids)] == prompt_ids
        assert enc.offsets[len(prompt_ids) - 1][1] == enc.layout.prompt_len
        assert enc.straddled == ()


@pytest.mark.parametrize("template", list(CASES))
def test_mask_leaves_out_exactly_the_trace_token_by_token(template):
    tok = make_tokenizer(template)
    _, injected, trace, answer_eot = CASES[template]
    enc = encode(MESSAGES, tok, "mask")
    prompt = _prompt(tok)
    text = enc.layout.text
    # The trace starts at the generation prompt's own opener when the prompt pre-opens it.
    start = text.index(trace[:7], len(prompt) - len(trace) if injected != trace else len(prompt))
    assert text[start : start + len(trace)] == trace
    expected = _expected_masked(enc.offsets, start, start + len(trace))
    assert [lab == IGNORE_INDEX for lab in enc.labels] == expected
    trained, masked = _split(enc)
    assert masked == trace
    assert trained == text[:start] + answer_eot
    assert [i for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX] == [
        i for i, m in zip(enc.input_ids, expected, strict=True) if not m
    ]


@pytest.mark.parametrize("template", ["Qwen__QwQ-32B", "deepseek-ai__DeepSeek-R1-Distill-Qwen-32B",
                                      "allenai__Olmo-3-Think_olmo_thinker"])
def test_prefixed_opening_delimiter_is_masked_with_the_closing_one(template):
    tok = make_tokenizer(template)
    enc = encode(MESSAGES, tok, "mask")
    prompt = _prompt(tok)
    opener = prompt.rindex("<think>")
    assert enc.layout.open_span == (opener, opener + len("<think>"))
    for (s, e), lab in zip(enc.offsets, enc.labels, strict=True):
        if s < opener + len("<think>") and e > opener:  # every token of the pre-opened "<think>"
            assert lab == IGNORE_INDEX
    close_s, close_e = enc.layout.close_span
    assert enc.layout.text[close_s:close_e] == "</think>"
    assert all(lab == IGNORE_INDEX for (s, e), lab in zip(enc.offsets, enc.labels, strict=True)
               if s < close_e and e > close_s)


@pytest.mark.parametrize("template", list(CASES))
def test_respond_trains_only_answer_and_end_of_turn(template):
    tok = make_tokenizer(template)
    *_, answer_eot = CASES[template]
    enc = encode(MESSAGES, tok, "respond")
    trained, masked = _split(enc)
    assert trained == answer_eot
    assert masked + trained == enc.layout.text
    # The masked tokens are exactly a prefix of the sequence.
    n_masked = sum(1 for lab in enc.labels if lab == IGNORE_INDEX)
    assert all(lab == IGNORE_INDEX for lab in enc.labels[:n_masked])
    assert enc.labels[n_masked:] == enc.input_ids[n_masked:]


def test_encode_example_contract():
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    out = encode_example(MESSAGES, tok, "mask")
    assert set(out) == {"input_ids", "labels", "attention_mask"}
    assert all(isinstance(x, int) for key in out for x in out[key])
    assert out["attention_mask"] == [1] * len(out["input_ids"])
    assert len(out["labels"]) == len(out["input_ids"])
    assert out["labels"].count(IGNORE_INDEX) > 0
    assert encode_example(MESSAGES, tok, Strategy.MASK, fmt="qwen3") == out


def test_qwen3_multi_turn_masks_only_the_final_trace_and_enable_thinking_false_adds_none():
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    enc = encode(chat, tok, "mask")
    assert _split(enc)[1] == "<think>\n\n</think>\n\n"
    assert enc.layout.text.count("<think>") == 1
    off = encode(chat, tok, "mask", template_kwargs={"enable_thinking": False})
    # The generation prompt already holds the closed empty trace: nothing is added.
    assert off.layout.text.count("<think>") == 1 and not off.layout.injected
    assert _split(off)[1] == "<think>\n\n</think>\n\n"


def test_answer_sharing_characters_with_the_prefixed_tail():
    tok = make_tokenizer("deepseek-ai__DeepSeek-R1-Distill-Qwen-32B")
    chat = [{"role": "user", "content": "Say it"}, {"role": "assistant", "content": "<b>4</b> done"}]
    enc = encode(chat, tok, "respond")
    assert _split(enc)[0] == "<b>4</b> done<｜end▁of▁sentence｜>"
    tail = "<｜Assistant｜><think>\n</think>\n\n<b>4</b> done<｜end▁of▁sentence｜>"
    assert enc.layout.text.endswith(tail)


def test_composable_sections():
    tok = make_tokenizer("Qwen__QwQ-32B")
    prompt_only = encode(MESSAGES, tok, "empty:prompt")
    assert _split(prompt_only)[0] == "<think>\n</think>\n\nThe answer is 4.<|im_end|>\n"
    bare_prompt = encode(MESSAGES, tok, "bare:prompt")
    assert _split(bare_prompt)[0] == "The answer is 4.<|im_end|>\n"
    respond = MaskSpec(True, frozenset({Section.PROMPT, Section.TRACE}), "respond")
    assert resolve_strategy("respond") == respond
    assert resolve_strategy("empty:trace").masked == Strategy.MASK.spec.masked


@pytest.mark.parametrize("bad", ["nope", "inject:trace", "empty:answers", "empty:response"])
def test_bad_strategies_are_explained(bad):
    with pytest.raises(ValueError, match=r"strategy|response"):
        resolve_strategy(bad)


@pytest.mark.parametrize(
    ("chat", "message"),
    [
        ([{"role": "user", "content": "q"}], "at least two messages"),
        ([{"role": "user", "content": "q"}, {"role": "user", "content": "a"}], "assistant answer"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}], "blank"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "x</think>4"}], "delimiter"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": 4}], "content"),
    ],
)
def test_bad_records_are_explained(chat, message):
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    with pytest.raises(EncodingError, match=message):
        encode_example(chat, tok, "mask")


def test_encode_many_names_the_failing_record():
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    bad = [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]
    with pytest.raises(EncodingError) as info:
        encode_many([MESSAGES, bad], tok, "mask")
    assert info.value.index == 1 and "record 1" in str(info.value)
    many = encode_many([MESSAGES] * 3, tok, "mask")
    assert [e.labels for e in many] == [encode(MESSAGES, tok, "mask").labels] * 3


def test_slow_tokenizer_is_refused():
    class Slow:
        chat_template = make_tokenizer("Qwen__Qwen3-0.6B").chat_template
        special_tokens_map = types.MappingProxyType({})

    with pytest.raises(EncodingError, match="fast tokenizer"):
        encode_example(MESSAGES, Slow(), "mask", fmt="qwen3")


def test_token_straddling_a_boundary_is_masked_and_reported():
    # Tokens: "ab" [0,2), "c\n" [2,4) straddles a boundary at 3, then a gap at 4, "d" [5,6).
    tokens = _OffsetList([(0, 2), (2, 4), (5, 6)])
    assert _labels([1, 2, 3], tokens, [(0, 3)]) == [IGNORE_INDEX, IGNORE_INDEX, 3]
    assert _labels([1, 2, 3], tokens, [(3, 4)]) == [1, IGNORE_INDEX, 3]
    assert _labels([1, 2, 3], tokens, [(4, 5)]) == [1, 2, 3]  # only the gap
    assert _labels([1, 2, 3], tokens, [(4, 6)]) == [1, 2, IGNORE_INDEX]
    assert _labels([1, 2, 3], tokens, [(4, 4)]) == [1, 2, 3]
    assert _straddled(tokens, [2, 3, 5]) == (3,)



@pytest.mark.parametrize("template", list(CASES))
def test_one_render_path_matches_rendering_the_prompt(template):
    """The generation prompt cut from the full render equals the template's own."""
    from rtc_metrics.masking import _locate_answer, _Renderer

    tok = make_tokenizer(template)
    renderer = _Renderer.for_tokenizer(tok, None)
    assert renderer.answer_header is not None  # the fast path is in use for these templates
    for chat in CHATS:
        full = tok.apply_chat_template(chat, tokenize=False)
        answer = chat[-1]["content"]
        cut = renderer.prompt_from_full(full, _locate_answer(full, answer, renderer.answer_suffix), answer)
        assert cut == _prompt(tok, chat)
        enc = encode(chat, tok, "respond")
        assert enc.layout.text[: enc.layout.prompt_len] == _prompt(tok, chat)
        trained = _split(enc)[0]
        assert answer.strip() in trained and trained.endswith(renderer.answer_suffix)


def test_word_level_tokenizer_with_gaps_between_tokens():
    """Offsets that skip characters (whitespace pre-tokenizer) still map sections to tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from rtc_metrics.sft.inspect import render_encoded

    words = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "user", "assistant", "What", "is",
             "2+2?", "The", "answer", "4.", "[UNK]"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>", "<think>", "</think>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="[UNK]")
    fast.chat_template = make_tokenizer("Qwen__Qwen3-0.6B").chat_template
    chat = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "The answer is 4."}]
    enc = encode(chat, fast, "respond")
    trained = [words[i] for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]
    assert trained == ["The", "answer", "is", "4.", "<|im_end|>"]
    masked = encode(chat, fast, "mask")
    pairs = zip(masked.input_ids, masked.labels, strict=True)
    assert [words[i] for i, lab in pairs if lab == IGNORE_INDEX] == ["<think>", "</think>"]
    shown = render_encoded(masked, separators=False).plain
    assert shown.replace("↵\n", "\n") == masked.layout.text


@pytest.mark.parametrize("template", list(CASES))
def test_build_layout_matches_encode(template):
    from rtc_metrics.masking import build_layout

    tok = make_tokenizer(template)
    for strategy in ("bare", "mask"):
        assert build_layout(MESSAGES, tok, strategy) == encode(MESSAGES, tok, strategy).layout
