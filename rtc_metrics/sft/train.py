"""Fine-tune a chat model with one masking strategy: transformers Trainer + PEFT LoRA.

Run folder layout (``output_dir``)::

    config.json          the settings of the run (written at the start)
    checkpoint-N/        Trainer checkpoints every save_steps; rtc_complete.json marks a whole one
    monitor.jsonl        the collapse curve (one line per evaluation)
    final/               the final model or LoRA adapter, with the tokenizer (renamed into place)
    run.json             summary: data counts, losses, monitor overhead, last curve point

``resume=True`` continues from the newest complete checkpoint with the model, optimizer,
scheduler, RNG and data-order state restored, so the final weights match an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rtc_metrics.io import InputError, write_json
from rtc_metrics.masking import resolve_strategy
from rtc_metrics.sft.config import SFTConfig
from rtc_metrics.sft.data import encode_records, load_prompts, load_records, split_holdout

__all__ = ["CheckpointMarker", "complete_checkpoints", "prepare", "prepare_tokenizer_and_format", "run_sft"]

#: File that marks a checkpoint as completely written.
COMPLETE_MARK = "rtc_complete.json"
#: Settings that must match between a run and its resumption.
RESUME_KEYS = ("model", "data", "strategy", "format", "full", "learning_rate", "epochs", "max_steps",
               "batch_size", "grad_accum", "seed", "lora_r", "lora_alpha", "lora_target", "max_length")


class CheckpointMarker(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has finished writing it."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_json(folder / COMPLETE_MARK, {"step": state.global_step})


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint folders marked complete, oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m and (path / COMPLETE_MARK).is_file():
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16(setting: bool | str) -> bool:
    if setting != "auto":
        return bool(setting)
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move a finished folder into place; readers see the old or the new one, whole."""
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def _check_resume(config: SFTConfig, out: Path, resume: bool) -> Path | None:
    saved_path = out / "config.json"
    checkpoints = complete_checkpoints(out)
    if not resume:
        if checkpoints or (out / "final").exists():
            raise InputError(
                f"{out} already holds a run; pass --resume to continue it or choose another --output-dir"
            )
        return None
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        changed = [k for k in RESUME_KEYS if saved.get(k) != config.to_dict().get(k)]
        if changed:
            raise InputError(
                f"--resume with different settings than {saved_path}: {', '.join(changed)}; "
                "resume with the same settings or start a new --output-dir"
            )
    return checkpoints[-1] if checkpoints else None


def prepare_tokenizer_and_format(config: SFTConfig) -> tuple[Any, Any, Any]:
    """(tokenizer, TraceFormat, MaskSpec) for a config; the pad token falls back to EOS."""
    from transformers import AutoTokenizer

    from rtc_metrics.detection import detect_format
    from rtc_metrics.formats import get_format

    try:
        spec = resolve_strategy(config.strategy)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    fmt = get_format(config.format) if config.format else detect_format(tokenizer, config.template_kwargs)
    return tokenizer, fmt, spec


def prepare(config: SFTConfig) -> dict[str, Any]:
    """Tokenizer, format, strategy, encoded data and monitor prompts (no model loaded)."""
    tokenizer, fmt, spec = prepare_tokenizer_and_format(config)
    records = load_records(config.data, config.data_split)
    if config.monitor_data:
        train_records, held = records, load_prompts(config.monitor_data)[: config.monitor_prompts]
    else:
        train_records, held = split_holdout(records, config.monitor_prompts, config.seed)
    encoded = encode_records(train_records, tokenizer, spec, fmt, config.template_kwargs, config.max_length)
    return {"tokenizer": tokenizer, "format": fmt, "spec": spec, "encoded": encoded, "held_out": held,
            "n_records": len(records)}


def _load_model(config: SFTConfig, bf16: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
    if config.full:
        return model
    from peft import LoraConfig, get_peft_model

    target: str | list[str] = config.lora_target
    if target != "all-linear":
        target = [t.strip() for t in target.split(",") if t.strip()]
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=target, task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def run_sft(
    config: SFTConfig, *, resume: bool = False, callbacks: Sequence[TrainerCallback] = (),
    disable_tqdm: bool | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train per ``config``; return the run summary (also written to ``run.json``).

    ``quiet`` prints nothing while training (no progress bar, no log lines); loggers named
    in ``report_to`` and the monitor curve still receive everything.
    """
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments, set_seed

    from rtc_metrics.sft.monitor import CollapseMonitor, read_curve

    if not config.model or not config.data:
        raise InputError("give the model (--model) and the training data (--data)")
    out = Path(config.output_dir)
    checkpoint = _check_resume(config, out, resume)
    set_seed(config.seed)
    prep = prepare(config)
    tokenizer, fmt, encoded = prep["tokenizer"], prep["format"], prep["encoded"]
    bf16 = _bf16(config.bf16)
    model = _load_model(config, bf16)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())

    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        bf16=bf16,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        report_to=config.report_to,
        dataloader_num_workers=0,
        dataloader_pin_memory=_has_cuda(),
        disable_tqdm=True if quiet else disable_tqdm,
    )
    monitor = None
    all_callbacks: list[TrainerCallback] = [CheckpointMarker()]
    if prep["held_out"] and config.monitor_prompts > 0:
        monitor = CollapseMonitor(
            tokenizer, [h.messages for h in prep["held_out"]], fmt, out / "monitor.jsonl",
            references=[h.reference for h in prep["held_out"]], every=config.monitor_every,
            max_new_tokens=config.monitor_max_new_tokens, batch_size=config.monitor_batch_size,
            overhead=config.monitor_overhead, early_stop_vr=config.early_stop_vr, label=config.label,
            strategy=prep["spec"].name, template_kwargs=config.template_kwargs,
        )
        all_callbacks.append(monitor)
    all_callbacks += list(callbacks)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(encoded.rows),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True),
        processing_class=tokenizer,
        callbacks=all_callbacks,
    )
    if quiet:
        trainer.remove_callback(PrinterCallback)
    if monitor is not None:
        monitor.attach(trainer)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started

    if trainer.is_world_process_zero():
        tmp = out / ".final.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        _replace_dir(tmp, out / "final")
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    curve = read_curve(out / "monitor.jsonl")
    summary = {
        "label": config.label,
        "strategy": prep["spec"].name,
        "format": fmt.name,
        "prefixed": fmt.prefixed,
        "records": prep["n_records"],
        "train_records": len(encoded.rows),
        "skipped_too_long": encoded.too_long,
        "held_out_prompts": len(prep["held_out"]),
        "trained_token_share": encoded.trained_tokens / max(encoded.total_tokens, 1),
        "steps": trainer.state.global_step,
        "resumed_from": str(checkpoint) if checkpoint else None,
        "train_loss": result.training_loss,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "train_seconds": seconds,
        "monitor_seconds": monitor.monitor_seconds if monitor else 0.0,
        "monitor_overhead": (monitor.monitor_seconds / max(seconds - monitor.monitor_seconds, 1e-9))
        if monitor else 0.0,
        "monitor_evaluations": monitor.evaluations if monitor else 0,
        "monitor_skipped": monitor.skipped if monitor else 0,
        "stopped_early_at": monitor.stopped_early_at if monitor else None,
        "final_curve_point": curve[-1] if curve else None,
        "final_dir": str(out / "final"),
        "lora": not config.full,
        "bf16": bf16,
    }
    if trainer.is_world_process_zero():
        write_json(out / "run.json", summary)
    return summary
