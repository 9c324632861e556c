"""Tiny tokenizers and models for the SFT tests, built offline with `tokenizers` and transformers."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TEMPLATES = SHARED / "reasoning-formats" / "chat_templates"

#: Per template file: (special tokens added whole, bos, eos, pad). OLMo-3 spells <think> in
#: plain text, so it is left to the BPE there (several tokens that may merge with neighbours).
TOKENIZER_SPECS = {
    "Qwen__Qwen3-0.6B": (["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"],
                         None, "<|im_end|>", "<|endoftext|>"),
    "Qwen__QwQ-32B": (["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"],
                      None, "<|im_end|>", "<|endoftext|>"),
    "deepseek-ai__DeepSeek-R1-Distill-Qwen-32B": (
        ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
         "<think>", "</think>"],
        "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "allenai__Olmo-3-Think_olmo_thinker": (["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
                                           None, "<|endoftext|>", "<|endoftext|>"),
    "openai__gpt-oss-120b": (["<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>",
                              "<|endoftext|>"], None, "<|return|>", "<|endoftext|>"),
}

CORPUS = [
    "What is 2 + 2? The answer is 4. Think step by step about the question, then answer.",
    "system user assistant developer analysis final message channel functions",
    "<think>\n\n</think>\n\n<think>\nfirst, add the numbers\n</think>\n\n",
    "You are a helpful AI assistant. You do not currently have access to any functions.",
    "Be brief. Reply in one line. 12 + 30 = 42, so the answer is 42.\n\n",
]


def require_templates() -> None:
    import pytest

    if not TEMPLATES.is_dir():
        pytest.skip(f"shared chat templates not found at {TEMPLATES}")


@cache
def make_tokenizer(template_name: str):
    """A byte-level BPE fast tokenizer with the template's markers as whole tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials, bos, eos, pad = TOKENIZER_SPECS[template_name]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    kwargs = {"eos_token": eos, "pad_token": pad}
    if bos:
        kwargs["bos_token"] = bos
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    tokenizer.chat_template = (TEMPLATES / f"{template_name}.jinja").read_text(encoding="utf-8")
    return tokenizer


def make_tiny_model_dir(path: Path, template_name: str = "Qwen__Qwen3-0.6B", seed: int = 0) -> Path:
    """Save a random tiny Qwen3ForCausalLM with the template's tokenizer to ``path``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = make_tokenizer(template_name)
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    Qwen3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def addition_rows(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 49), rng.randint(1, 49)
        rows.append({"instruction": f"What is {a} + {b}?", "response": f"The answer is {a + b}."})
    return rows
