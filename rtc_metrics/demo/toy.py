"""A tiny reasoning model built from stock parts, deterministically, offline.

- a character-level tokenizer made with ``tokenizers`` and saved as a transformers fast
  tokenizer, with ``<think>``/``</think>`` and the chat markers as single tokens;
- two real Jinja chat templates: a Qwen3-style one (the model writes ``<think>``; the last
  assistant turn always renders a think block, empty when none is given) and an R1-style one
  (the generation prompt ends with ``<think>\\n``; trace text is stripped from assistant content);
- a small stock ``Qwen3ForCausalLM`` (~0.9M parameters) loadable with ``AutoModelForCausalLM``.

The test suite reuses these builders wherever a model that really reasons is needed.
"""

from __future__ import annotations

import string
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = [
    "QWEN3_STYLE_TEMPLATE",
    "R1_STYLE_TEMPLATE",
    "SPECIAL_MARKERS",
    "build_model",
    "build_tokenizer",
    "save_pretrained",
]

#: Chat and trace markers, each a single token. Decoding keeps them (not "special").
SPECIAL_MARKERS = (
    "<|im_start|>",
    "<|im_end|>",
    "<think>",
    "</think>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜end▁of▁sentence｜>",
)
PAD = "<|endoftext|>"
#: Template and end-of-turn token of each style.
STYLES = {
    "qwen3": ("QWEN3_STYLE_TEMPLATE", "<|im_end|>"),
    "r1": ("R1_STYLE_TEMPLATE", "<｜end▁of▁sentence｜>"),
}

#: Qwen3 hybrid-style template (its thinking logic, trimmed to what the toy needs).
QWEN3_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- set content = message.content %}"
    "{%- set reasoning_content = message.reasoning_content | default('') %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning_content = content.split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning_content + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

#: DeepSeek-R1-distill-style template: the generation prompt pre-opens the trace.
R1_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'user' %}{{- '<｜User｜>' + message.content }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set content = message.content %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}"
)

_CHARACTERS = string.digits + string.ascii_letters + " \n" + "+-*=.,:;?!'\"()[]/%$#&<>_"


def build_tokenizer(style: str = "qwen3") -> PreTrainedTokenizerFast:
    """A character-level fast tokenizer with the chat markers as single tokens.

    ``style`` is "qwen3" (the model opens its own trace) or "r1" (the generation prompt
    pre-opens it); both share one vocabulary, so one model serves both.
    """
    if style not in STYLES:
        raise ValueError(f"unknown toy chat style {style!r}; choose one of {', '.join(STYLES)}")
    template_name, eos = STYLES[style]
    vocab = {PAD: 0, "[UNK]": 1}
    for ch in _CHARACTERS:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", pad_token=PAD, eos_token=eos, model_max_length=512
    )
    # Added (not special) tokens: single ids, and decoding never deletes them.
    tokenizer.add_tokens(list(SPECIAL_MARKERS))
    tokenizer.chat_template = globals()[template_name]
    tokenizer.padding_side = "left"
    return tokenizer


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden_size: int = 128, layers: int = 4):
    """A small ``Qwen3ForCausalLM`` with random weights (seeded), sized to the tokenizer."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        # Either style's end-of-turn token ends generation.
        eos_token_id=tokenizer.convert_tokens_to_ids([eos for _, eos in STYLES.values()]),
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(config)


def save_pretrained(model, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Save model and tokenizer so ``AutoModelForCausalLM.from_pretrained(path)`` loads them."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
