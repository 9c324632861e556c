"""``rtc demo``: a toy reasoning model collapses under answer-only SFT; masking saves it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="offline end-to-end demo: toy reasoning model, SFT strategies, lm_eval, leaderboard",
        description="Builds and pre-trains a tiny reasoning model, fine-tunes it on answer-only data "
        "with each masking strategy, evaluates every model with lm_eval on rtc_toy_arithmetic and "
        "compares them. Offline, CPU, a few minutes; stages are cached under --out.",
    )
    parser.add_argument("--out", type=Path, default=Path("rtc_out/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete cached stages and rebuild everything")
    parser.add_argument(
        "--lr", type=float, nargs="+", default=[4e-5], metavar="LR",
        help="SFT learning rate(s); several values run a sweep (default: %(default)s; the R1-style "
        "runs use three times each rate)",
    )
    parser.add_argument("--pretrain-steps", type=int, default=None, help="reasoning pre-training steps")
    parser.add_argument("--sft-steps", type=int, default=None, help="SFT steps per strategy")
    parser.add_argument("--n-eval", type=int, default=None, help="evaluation problems per model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rtc_metrics.demo.pipeline import DemoConfig, run_demo
    from rtc_metrics.io import InputError

    if any(lr <= 0 for lr in args.lr):
        raise InputError(f"--lr values must be positive, got {args.lr}")
    overrides = {
        name: value
        for name, value in (
            ("pretrain_steps", args.pretrain_steps), ("sft_steps", args.sft_steps), ("n_eval", args.n_eval),
        )
        if value is not None
    }
    for name, value in overrides.items():
        if value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    run_demo(DemoConfig(out=args.out, fresh=args.fresh, lrs=tuple(args.lr), threads=args.threads, **overrides))
    return 0
