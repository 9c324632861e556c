"""Build a ~1M-parameter Qwen3ForCausalLM whose greedy output is known in advance (no hub needed).

    python examples/tiny_qwen3.py OUT_DIR [--nonspecial]

The model is a successor table: embeddings are one-hot, attention and MLP outputs are zeroed
(``o_proj``/``down_proj``), so the residual stream after the final RMSNorm is the one-hot of the
LAST token, and ``lm_head`` maps it to the next token of a scripted chain. Greedy decoding is thus
fully determined by the prompt's last token:

- a prompt ending in `` go``  -> ``<think>Let me\\n\\n think</think> The answer is 42<|im_end|>``
- a prompt ending in `` skip`` -> `` The answer is 42<|im_end|>`` (no trace: "missing")
- a prompt ending in ``\\n`` (the ChatML generation prompt) -> the same as `` go``
- a prompt ending in ``<think>`` (a template pre-fill) -> ``Let me\\n\\n think</think> ...``

``<think>``/``</think>`` are single added tokens, special by default (so they vanish under
``skip_special_tokens=True``), ordinary added tokens with ``--nonspecial``. The chat template is
ChatML; ``prefill=True`` in :func:`build` makes it pre-open the trace (``<think>\\n``... here just
``<think>``) the way DeepSeek-R1 / Qwen3-thinking templates do. The template honours
``enable_thinking=False`` by pre-filling an empty closed trace, as Qwen3's does.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
EOS = "<|im_end|>"
VALID_TARGET = f"{THINK_OPEN}Let me\n\n think{THINK_CLOSE} The answer is 42"
ANSWER = "42"
_CORPUS = "Let me think The answer is 42 go skip Question question assistant user system " * 4

_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% elif PREFILL %}<think>{% endif %}{% endif %}"
)


def _tokenizer(special: bool, prefill: bool):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([_CORPUS, "\n\n"] * 8, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|im_start|>", EOS)])
    think = [AddedToken(t, special=special, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)]
    if special:
        tok.add_special_tokens(think)
    else:
        tok.add_tokens(think)
    template = _TEMPLATE.replace("PREFILL", "true" if prefill else "false")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=EOS, chat_template=template, model_max_length=2048
    )


def build(out_dir: str | Path, special: bool = True, prefill: bool = False) -> Path:
    """Write the tokenizer and model to ``out_dir`` and return it."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = Path(out_dir)
    tokenizer = _tokenizer(special, prefill)
    vocab = len(tokenizer)
    eos = tokenizer.convert_tokens_to_ids(EOS)

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    valid_chain = ids(VALID_TARGET)
    if len(set(valid_chain)) != len(valid_chain):
        raise RuntimeError(f"the scripted answer must use distinct tokens, got {valid_chain}")
    (answer_start,) = ids(" The")
    successor = dict(itertools.pairwise(valid_chain))
    successor[valid_chain[-1]] = eos
    # "\n" ends the ChatML generation prompt ("<|im_start|>assistant\n"): chat requests think.
    for trigger, target in ((" go", valid_chain[0]), (" skip", answer_start), ("\n", valid_chain[0])):
        (tid,) = ids(trigger)
        successor[tid] = target

    hidden = ((vocab + 63) // 64) * 64
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        eos_token_id=eos,
        pad_token_id=eos,
        bos_token_id=None,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, :vocab].copy_(torch.eye(vocab))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = model.lm_head.weight
        head.zero_()
        for cur in range(vocab):  # unscripted tokens end the generation
            head[successor.get(cur, eos), cur] = 10.0
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--nonspecial", action="store_true", help="<think>/</think> as ordinary added tokens")
    parser.add_argument("--prefill", action="store_true", help="chat template pre-opens the trace")
    args = parser.parse_args()
    path = build(args.out_dir, special=not args.nonspecial, prefill=args.prefill)
    print(path)


if __name__ == "__main__":
    main()
