"""'Reasoning pre-training' of the toy model: teach it to write a trace, then the answer."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from rtc_metrics.demo.arithmetic import Problem

__all__ = ["completion_text", "encode_pretraining_example", "pretrain"]


def completion_text(problem: Problem, tokenizer) -> str:
    """What the model should write after the generation prompt: trace, close, answer, end.

    Under a template that pre-opens the trace (R1 style) the opener is already in the
    prompt; otherwise the model writes ``<think>`` itself.
    """
    prompt = generation_prompt(problem, tokenizer)
    opener = "" if prompt.endswith("<think>\n") else "<think>\n"
    return f"{opener}{problem.trace}\n</think>\n\n{problem.response}{tokenizer.eos_token}"


def generation_prompt(problem: Problem, tokenizer) -> str:
    """The chat-templated prompt for ``problem`` with the generation prompt appended."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": problem.prompt}], tokenize=False, add_generation_prompt=True
    )


def encode_pretraining_example(problem: Problem, tokenizer) -> tuple[list[int], list[int]]:
    """(input_ids, labels) with the prompt masked (-100) and the completion trained."""
    prompt_ids = tokenizer(generation_prompt(problem, tokenizer), add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_text(problem, tokenizer), add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids, [-100] * len(prompt_ids) + completion_ids


def pretrain(
    model,
    tokenizers: Sequence,
    problems: Sequence[Problem],
    *,
    steps: int = 500,
    lr: float = 3e-3,
    batch_size: int = 64,
    warmup: int = 25,
    seed: int = 0,
    bf16: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` on problems rendered with each tokenizer's chat template in turn.

    Uses AdamW with linear warmup and cosine decay, eager attention (faster than SDPA for
    this size on a CPU), and bf16 autocast when ``bf16`` (weights stay float32). Returns
    the loss per step.
    """
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    pad_id = tokenizers[0].pad_token_id
    examples = [encode_pretraining_example(p, tokenizers[i % len(tokenizers)]) for i, p in enumerate(problems)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    attention = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    model.train()
    losses = []
    for step in range(steps):
        batch = rng.sample(examples, min(batch_size, len(examples)))
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(labs)] = torch.tensor(labs)
            mask[row, : len(ids)] = 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.config._attn_implementation = attention
    model.eval()
    return losses
