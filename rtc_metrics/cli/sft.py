"""``rtc sft``: fine-tune a chat model with a loss-masking strategy, with the collapse monitor."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rtc_metrics.io import InputError

#: CLI flag -> SFTConfig field, for flags that map one to one.
_FIELDS = {
    "model": "model", "data": "data", "output_dir": "output_dir", "strategy": "strategy",
    "format_name": "format", "data_split": "data_split", "max_length": "max_length", "full": "full",
    "lora_r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
    "lora_target": "lora_target", "lr": "learning_rate", "epochs": "epochs",
    "warmup_ratio": "warmup_ratio", "batch_size": "batch_size", "grad_accum": "grad_accum",
    "max_steps": "max_steps", "bf16": "bf16", "seed": "seed", "save_steps": "save_steps",
    "save_total_limit": "save_total_limit", "logging_steps": "logging_steps", "report_to": "report_to",
    "run_label": "run_label", "monitor_data": "monitor_data", "monitor_prompts": "monitor_prompts",
    "monitor_every": "monitor_every", "monitor_max_new_tokens": "monitor_max_new_tokens",
    "monitor_batch_size": "monitor_batch_size", "monitor_overhead": "monitor_overhead",
    "early_stop_vr": "early_stop_vr",
}


#: Marks "--monitor-overhead off", which sets the setting to None (no budget).
_OFF = "off"


def _share_or_off(text: str) -> float | str:
    if text.strip().lower() in ("off", "none"):
        return _OFF
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share such as 0.1, or 'off', got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every ``rtc sft`` flag; unset flags fall back to the config file, profile, then defaults."""
    parser.add_argument("--model", help="model folder or hub name")
    parser.add_argument("--data", help="training JSONL (messages or instruction/response) or datasets name")
    parser.add_argument("--data-split", help="split of a datasets name (default train)")
    parser.add_argument("--output-dir", help="run folder (default sft-out)")
    parser.add_argument(
        "--strategy", help="bare | empty | mask | respond | close_only, or RENDER:SECTIONS (default mask)"
    )
    parser.add_argument("--format", dest="format_name", metavar="NAME",
                        help="reasoning format (default: detected from the chat template)")
    parser.add_argument("--template-kwargs", metavar="JSON", help="chat template variables, e.g. "
                        "'{\"enable_thinking\": true}'")
    parser.add_argument("--profile", help="named settings: study (default values), cpu-tiny")
    parser.add_argument("--config", metavar="FILE", help="settings file (JSON or YAML)")
    train = parser.add_argument_group("training")
    train.add_argument("--full", action="store_true", default=None, help="full fine-tuning instead of LoRA")
    train.add_argument("--lora-r", type=int)
    train.add_argument("--lora-alpha", type=int)
    train.add_argument("--lora-dropout", type=float)
    train.add_argument("--lora-target", help="'all-linear' or comma-separated module names")
    train.add_argument("--lr", type=float, help="learning rate (default 1e-5)")
    train.add_argument("--epochs", type=float, help="default 3")
    train.add_argument("--warmup-ratio", type=float, help="default 0.1")
    train.add_argument("--batch-size", type=int, help="per device (default 8)")
    train.add_argument("--grad-accum", type=int, help="gradient accumulation steps (default 1)")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    train.add_argument("--max-length", type=int, help="skip records longer than this (default 2048 tokens)")
    train.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                       help="default: when the GPU supports it")
    train.add_argument("--seed", type=int)
    train.add_argument("--save-steps", type=int, help="checkpoint every M steps (default 100)")
    train.add_argument("--save-total-limit", type=int)
    train.add_argument("--logging-steps", type=int)
    train.add_argument("--report-to", help="Trainer loggers: none, tensorboard, wandb, ...")
    train.add_argument("--run-label", help="label of the run in the monitor curve (default: strategy)")
    train.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    mon = parser.add_argument_group("collapse monitor")
    mon.add_argument("--monitor-data", help="held-out prompts JSONL (default: hold out training records)")
    mon.add_argument("--monitor-prompts", type=int, help="K held-out prompts (0 disables; default 32)")
    mon.add_argument("--monitor-every", type=int, help="evaluate every N steps (default 50)")
    mon.add_argument("--monitor-max-new-tokens", type=int, help="token budget (default 256)")
    mon.add_argument("--monitor-batch-size", type=int)
    mon.add_argument("--monitor-overhead", type=_share_or_off, metavar="SHARE|off",
                     help="skip evaluations beyond this share of training time (default 0.10; off: never)")
    mon.add_argument("--early-stop-vr", type=float, help="stop when VR falls below this")
    parser.add_argument("--dry-run", type=int, nargs="?", const=1, metavar="N",
                        help="print N records (default 1) coloured trained/masked, then exit")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sft", help="fine-tune with a loss-masking strategy (bare/empty/mask/respond)",
        description="Fine-tune a chat model on instruction/response data with one of the study's "
        "loss-masking strategies, tracking trace collapse on held-out prompts.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    from rtc_metrics.sft.config import load_config

    # Flags left unset are None and must not override the file or profile.
    overrides = {
        field: getattr(args, flag) for flag, field in _FIELDS.items() if getattr(args, flag) is not None
    }
    if overrides.get("monitor_overhead") == _OFF:
        overrides["monitor_overhead"] = None
    if args.template_kwargs:
        try:
            overrides["template_kwargs"] = json.loads(args.template_kwargs)
        except json.JSONDecodeError as exc:
            raise InputError(f"--template-kwargs is not valid JSON: {exc.msg}") from None
    return load_config(args.profile, args.config, overrides)


def dry_run(config: Any, n: int) -> int:
    from rich.console import Console
    from rich.text import Text

    from rtc_metrics.mask_audit import audit
    from rtc_metrics.masking import EncodingError, encode_many
    from rtc_metrics.sft.data import load_records
    from rtc_metrics.sft.inspect import render_encoded, summary_line
    from rtc_metrics.sft.train import prepare_tokenizer_and_format

    tokenizer, fmt, spec = prepare_tokenizer_and_format(config)
    records = load_records(config.data, config.data_split)[: max(n, 1)]
    console = Console()
    console.print(f"format {fmt.name} (open {fmt.open!r}, close {fmt.close!r}, prefixed={fmt.prefixed})",
                  markup=False)
    try:
        encoded = encode_many([r.messages for r in records], tokenizer, spec, fmt, config.template_kwargs)
    except EncodingError as exc:
        where = records[exc.index].where if exc.index is not None else config.data
        raise InputError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
    for record, enc in zip(records, encoded, strict=True):
        console.rule(Text(record.where))
        console.print(render_encoded(enc, brackets=not console.is_terminal or console.no_color))
        console.print(summary_line(enc), markup=False)
        # What training would refuse (rtc_metrics.mask_audit), shown instead of raised here.
        for problem in audit(enc, record.messages, tokenizer, config.template_kwargs):
            console.print(f"mask audit: {problem.check}: {problem.message}", style="red", markup=False)
    return 0


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.dry_run is not None:
        if not config.model or not config.data:
            raise InputError("--dry-run needs --model (for its tokenizer) and --data")
        return dry_run(config, args.dry_run)
    from rtc_metrics.sft.train import run_sft

    summary = run_sft(config, resume=args.resume)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``examples/sft_masking.py``), same flags as ``rtc sft``."""
    from rtc_metrics.cli import USER_ERRORS

    parser = argparse.ArgumentParser(prog="sft_masking", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except USER_ERRORS as exc:
        print(f"sft: error: {exc}", file=sys.stderr)
        return 2
