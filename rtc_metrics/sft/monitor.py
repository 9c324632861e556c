"""The collapse monitor: a Trainer callback that tracks VR/ER/TR/MR during fine-tuning.

Every ``every`` optimizer steps it greedily generates on K held-out prompts with a token
budget, parses each output with :func:`rtc_metrics.parse_trace` (the rendered prompt
decides whether the trace was pre-opened), logs the rates to the Trainer's loggers as
``rtc/vr`` ... and appends one line per evaluation to a JSONL curve file:

``{"step", "epoch", "n", "vr", "er", "tr", "mr", "pass@1", "rpass@1", "model", "strategy"}``

Its cost is measured; an evaluation is skipped while the monitor has used more than
``overhead`` of the training time so far (the first and the last always run).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rtc_metrics.formats import TraceFormat
from rtc_metrics.io import atomic_write
from rtc_metrics.parsing import parse_trace
from rtc_metrics.stats import TraceSummary

__all__ = ["CURVE_KEYS", "CollapseMonitor", "answers_match", "read_curve"]

#: Keys of every line of the curve file, in order.
CURVE_KEYS = ("step", "epoch", "n", "vr", "er", "tr", "mr", "pass@1", "rpass@1", "model", "strategy")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def answers_match(answer: str, reference: str) -> bool:
    """A quick proxy for correctness during training (the harness scores properly).

    Numeric references compare with the last number of the answer; others compare
    case- and whitespace-insensitively.
    """
    ref_number = _last_number(reference)
    if ref_number is not None:
        got = _last_number(answer)
        return got is not None and math.isclose(got, ref_number, rel_tol=1e-9, abs_tol=1e-9)
    return " ".join(answer.lower().split()) == " ".join(reference.lower().split())


def read_curve(path: str | Path) -> list[dict[str, Any]]:
    """The evaluations in a curve file, in order."""
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


class CollapseMonitor(TrainerCallback):
    """Greedy generation on held-out prompts, parsed into trace-structure rates."""

    def __init__(
        self,
        tokenizer: Any,
        prompts: Sequence[Sequence[Mapping[str, str]]],
        fmt: TraceFormat,
        curve_path: str | Path,
        *,
        references: Sequence[str | None] | None = None,
        every: int = 50,
        max_new_tokens: int = 256,
        batch_size: int = 32,
        overhead: float | None = 0.10,
        early_stop_vr: float | None = None,
        label: str = "model",
        strategy: str = "",
        template_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if every < 1 or max_new_tokens < 1 or batch_size < 1:
            raise ValueError("every, max_new_tokens and batch_size must be at least 1")
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.curve_path = Path(curve_path)
        self.every = every
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.overhead = overhead
        self.early_stop_vr = early_stop_vr
        self.label = label
        self.strategy = strategy
        self.references = list(references) if references is not None else [None] * len(prompts)
        if len(self.references) != len(prompts):
            raise ValueError("references must have one entry per prompt")
        #: The exact generation prompts (rendered once), as the model sees them.
        self.prompt_texts = [
            tokenizer.apply_chat_template(
                list(m), tokenize=False, add_generation_prompt=True, **dict(template_kwargs or {})
            )
            for m in prompts
        ]
        self.trainer: Any = None
        #: Seconds spent generating and parsing, and seconds of training seen.
        self.monitor_seconds = 0.0
        self.evaluations = 0
        self.skipped = 0
        self._train_start = 0.0
        self._last_step = -1
        self.stopped_early_at: int | None = None

    def attach(self, trainer: Any) -> CollapseMonitor:
        """Give the monitor the trainer whose loggers receive its metrics."""
        self.trainer = trainer
        return self

    @property
    def train_seconds(self) -> float:
        """Wall time since training began, minus the monitor's own time."""
        return max(0.0, time.perf_counter() - self._train_start - self.monitor_seconds)

    # --- callback events --------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._train_start = time.perf_counter()
        if state.is_world_process_zero:
            # On resume, drop evaluations from after the checkpoint: they are redone.
            kept = [row for row in read_curve(self.curve_path) if row.get("step", 0) <= state.global_step]
            with atomic_write(self.curve_path) as handle:
                for row in kept:
                    handle.write(json.dumps(row) + "\n")
        if state.global_step == 0 or not read_curve(self.curve_path):
            self._evaluate(kwargs["model"], state, control)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = state.global_step
        last = state.max_steps > 0 and step >= state.max_steps
        if step % self.every and not last:
            return
        over_budget = self.overhead is not None and self.monitor_seconds > self.overhead * self.train_seconds
        if over_budget and not last:
            self.skipped += 1
            return
        self._evaluate(kwargs["model"], state, control)

    # --- evaluation -------------------------------------------------------------------

    def _generate(self, model: Any) -> list[str]:
        import torch

        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        stop_ids = set()
        for source in (getattr(model, "generation_config", None), tok):
            eos = getattr(source, "eos_token_id", None)
            stop_ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        outputs = []
        side = tok.padding_side
        tok.padding_side = "left"  # decoder-only generation needs the prompt flush right
        try:
            for start in range(0, len(self.prompt_texts), self.batch_size):
                texts = self.prompt_texts[start : start + self.batch_size]
                batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                batch = {k: v.to(model.device) for k, v in batch.items()}
                with torch.no_grad():
                    generated = model.generate(
                        **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                        pad_token_id=pad_id, eos_token_id=sorted(stop_ids) or None,
                    )
                for row in generated[:, batch["input_ids"].shape[1]:].tolist():
                    cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
                    # Keep special tokens: delimiters may be special (harmony, [THINK]).
                    outputs.append(tok.decode(row[:cut], skip_special_tokens=False))
        finally:
            tok.padding_side = side
        return outputs

    def evaluate(self, model: Any) -> TraceSummary:
        """Generate on the held-out prompts and summarise the trace structure."""
        was_training = model.training
        model.eval()
        try:
            outputs = self._generate(model)
        finally:
            if was_training:
                model.train()
        summary = TraceSummary()
        for text, prompt, reference in zip(outputs, self.prompt_texts, self.references, strict=True):
            trace = parse_trace(text, self.fmt, prompt=prompt)
            correct = None if reference is None else float(answers_match(trace.answer, reference))
            summary.add(trace, correct)
        return summary

    def _evaluate(self, model: Any, state: Any, control: Any) -> None:
        if state.global_step == self._last_step:
            return
        started = time.perf_counter()
        summary = self.evaluate(model)
        row = {
            "step": int(state.global_step),
            "epoch": float(state.epoch or 0.0),
            "n": summary.n,
            "vr": summary.vr,
            "er": summary.er,
            "tr": summary.tr,
            "mr": summary.mr,
            "pass@1": summary.pass_at_1,
            "rpass@1": summary.rpass_at_1,
            "model": self.label,
            "strategy": self.strategy,
        }
        if state.is_world_process_zero:
            # One whole line per write, flushed: a reader never sees half a line.
            with self.curve_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
                handle.flush()
        self._last_step = state.global_step
        self.evaluations += 1
        self.monitor_seconds += time.perf_counter() - started
        if self.trainer is not None:
            logs = {f"rtc/{k}": v for k, v in row.items() if isinstance(v, float) and k != "epoch"}
            if state.global_step > 0:
                logs["rtc/monitor_overhead"] = self.monitor_seconds / max(self.train_seconds, 1e-9)
            self.trainer.log(logs)
        stop = self.early_stop_vr is not None and summary.vr is not None and summary.vr < self.early_stop_vr
        if stop and state.global_step > 0:  # the base model's own VR never stops training
            control.should_training_stop = True
            self.stopped_early_at = int(state.global_step)
