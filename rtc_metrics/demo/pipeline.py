"""`rtc demo`: collapse and its mitigation, end to end, offline on a CPU in minutes.

1. Build the toy reasoning model (``toy.py``) and pre-train it to reason (``pretrain.py``).
2. Fine-tune it on answer-only data with each masking strategy through the SFT companion
   (``rtc_metrics.sft``), the collapse monitor on.
3. Evaluate the base model and every fine-tuned model with real ``lm_eval`` on the
   ``rtc_toy_arithmetic`` task (``evaluate.py``).
4. Write ``summary.json`` (numbers from lm-eval's results files), print the leaderboard and
   the VR curves, and draw the figures and HTML report with ``rtc compare``.

Every stage is cached under the output folder, keyed by its settings: a second run only
redoes what changed; ``fresh=True`` starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtc_metrics.io import atomic_write, write_json

__all__ = ["DemoConfig", "run_demo"]

#: Strategies fine-tuned on the Qwen3-style template; labels equal the strategy names.
QWEN3_STRATEGIES = ("bare", "empty", "mask", "respond")
#: Strategies fine-tuned on the R1-style template (labels get an "r1-" prefix).
R1_STRATEGIES = ("bare",)


@dataclass
class DemoConfig:
    """Settings of one demo run; every stage's cache key is derived from them."""

    #: Output folder (models, data, eval results, curves, figures, summary.json).
    out: Path = Path("rtc_out/demo")
    #: SFT learning rates; the first gives the plain labels, others a "@lr" suffix.
    #: At 4e-5 (150 steps, batch 32) bare/empty collapse and mask/respond protect.
    lrs: tuple[float, ...] = (4e-5,)
    #: The R1-style runs train at this multiple of each learning rate: at the Qwen3-style
    #: rate the R1-style model only starts to collapse within the step budget.
    r1_lr_scale: float = 3.0
    #: Pre-training steps, learning rate and batch size.
    pretrain_steps: int = 400
    pretrain_lr: float = 3e-3
    pretrain_batch: int = 64
    #: SFT steps and batch size per strategy.
    sft_steps: int = 150
    sft_batch: int = 32
    #: Evaluation problems for lm-eval, and held-out prompts for the collapse monitor.
    n_eval: int = 200
    n_monitor: int = 32
    #: Evaluate the monitor every this many SFT steps.
    monitor_every: int = 25
    #: Generation budget in lm-eval (None: the task's own, 256 tokens).
    max_gen_toks: int | None = None
    seed: int = 0
    #: Delete the output folder first.
    fresh: bool = False
    #: torch threads (None keeps torch's default).
    threads: int | None = None
    strategies: tuple[str, ...] = QWEN3_STRATEGIES
    r1_strategies: tuple[str, ...] = R1_STRATEGIES
    #: Progress messages go here.
    log: Callable[[str], None] = field(default=print, repr=False, compare=False)

    def key(self, *names: str) -> str:
        """A short hash of the named settings (a stage's cache key)."""
        values = {n: getattr(self, n) for n in names}
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cached(stage_dir: Path, key: str) -> bool:
    marker = stage_dir / "rtc_demo_stage.json"
    return marker.is_file() and json.loads(marker.read_text()).get("key") == key


def _mark(stage_dir: Path, key: str, **info: Any) -> None:
    write_json(stage_dir / "rtc_demo_stage.json", {"key": key, **info})


def _lr_label(label: str, lr: float, config: DemoConfig) -> str:
    return label if lr == config.lrs[0] else f"{label}@{lr:g}"


def build_base(config: DemoConfig) -> dict[str, Path]:
    """Pre-train the toy model once; save it with each chat style's tokenizer."""
    from rtc_metrics.demo.arithmetic import make_problems
    from rtc_metrics.demo.pretrain import pretrain
    from rtc_metrics.demo.toy import build_model, build_tokenizer, save_pretrained

    key = config.key("pretrain_steps", "pretrain_lr", "pretrain_batch", "seed")
    paths = {"qwen3": config.out / "models" / "base", "r1": config.out / "models" / "r1-base"}
    if all(_cached(p, key) for p in paths.values()):
        config.log(f"base model: cached ({paths['qwen3']})")
        return paths
    tokenizers = {style: build_tokenizer(style) for style in paths}
    model = build_model(tokenizers["qwen3"], seed=config.seed)
    problems = make_problems(20000, seed=config.seed + 1)
    started = time.perf_counter()

    def progress(step: int, loss: float) -> None:
        if step % 50 == 0 or step == config.pretrain_steps - 1:
            config.log(f"  pre-training step {step:4d}  loss {loss:.3f}  ({time.perf_counter() - started:.0f} s)")

    config.log(f"base model: reasoning pre-training, {config.pretrain_steps} steps")
    pretrain(
        model, list(tokenizers.values()), problems, steps=config.pretrain_steps, lr=config.pretrain_lr,
        batch_size=config.pretrain_batch, seed=config.seed, bf16=cpu_has_bf16(), on_step=progress,
    )
    for style, path in paths.items():
        shutil.rmtree(path, ignore_errors=True)
        save_pretrained(model, tokenizers[style], path)
        _mark(path, key, seconds=time.perf_counter() - started)
    return paths


def write_data(config: DemoConfig) -> dict[str, Path]:
    """Answer-only SFT records and held-out monitor prompts (disjoint seeds from evaluation)."""
    from rtc_metrics.demo.arithmetic import make_problems

    data = config.out / "data"
    files = {"train": data / "sft_train.jsonl", "monitor": data / "monitor.jsonl"}
    train = make_problems(config.sft_steps * config.sft_batch, seed=config.seed + 2)
    monitor = make_problems(config.n_monitor, seed=config.seed + 3)
    with atomic_write(files["train"]) as handle:
        for p in train:
            chat = [{"role": "user", "content": p.prompt}, {"role": "assistant", "content": p.response}]
            handle.write(json.dumps({"messages": chat, "answer": p.answer}) + "\n")
    with atomic_write(files["monitor"]) as handle:
        for p in monitor:
            handle.write(json.dumps({"prompt": p.prompt, "answer": p.answer}) + "\n")
    return files


def fine_tune(config: DemoConfig, base: Path, strategy: str, lr: float, label: str, data: dict[str, Path]) -> Path:
    """One SFT run with the companion; returns the final model folder."""
    from rtc_metrics.sft.config import SFTConfig
    from rtc_metrics.sft.train import run_sft

    run_dir = config.out / "sft" / label
    key = config.key("pretrain_steps", "pretrain_lr", "pretrain_batch", "sft_steps", "sft_batch",
                     "n_monitor", "monitor_every", "seed") + f"-{strategy}-{lr:g}-{base.name}"
    if _cached(run_dir, key) and (config.out / "models" / label).is_dir():
        config.log(f"sft {label}: cached")
        return config.out / "models" / label
    shutil.rmtree(run_dir, ignore_errors=True)
    config.log(f"sft {label}: strategy {strategy}, lr {lr:g}, {config.sft_steps} steps")
    summary = run_sft(
        SFTConfig(
            model=str(base), data=str(data["train"]), output_dir=str(run_dir), strategy=strategy,
            full=True, learning_rate=lr, batch_size=config.sft_batch, max_steps=config.sft_steps,
            warmup_ratio=0.1, bf16=False, seed=config.seed, save_steps=config.sft_steps, logging_steps=25,
            run_label=label, monitor_data=str(data["monitor"]), monitor_prompts=config.n_monitor,
            monitor_every=config.monitor_every, monitor_max_new_tokens=96, monitor_batch_size=config.n_monitor,
            monitor_overhead=None, max_length=256,
        ),
        quiet=True,
    )
    last = summary.get("final_curve_point") or {}
    config.log(f"  done in {summary['train_seconds']:.0f} s; monitor VR at the end {last.get('vr')}")
    # Evaluate from models/<label>, so results files and leaderboards are labelled by run.
    model_dir = config.out / "models" / label
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(run_dir / "final", model_dir)
    _mark(model_dir, key)
    _mark(run_dir, key)
    return model_dir


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run every stage; return ``summary.json``'s content."""
    from rtc_metrics.demo.evaluate import evaluate_model, headline_metrics, load_results_file

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    # Weight loading/saving and dataset bars say nothing about the demo's stages.
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if config.fresh and config.out.exists():
        shutil.rmtree(config.out)
    config.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bases = build_base(config)
    data = write_data(config)

    models: dict[str, Path] = {"base": bases["qwen3"], "r1-base": bases["r1"]}
    for lr in config.lrs:
        for strategy in config.strategies:
            label = _lr_label(strategy, lr, config)
            models[label] = fine_tune(config, bases["qwen3"], strategy, lr, label, data)
        for strategy in config.r1_strategies:
            label = _lr_label(f"r1-{strategy}", lr, config)
            models[label] = fine_tune(config, bases["r1"], strategy, lr * config.r1_lr_scale, label, data)

    summary: dict[str, Any] = {}
    eval_root = config.out / "eval"
    for label, path in models.items():
        target = eval_root / label
        # The model folder's stage marker changes whenever the model is retrained.
        model_key = json.loads((path / "rtc_demo_stage.json").read_text())["key"] if (
            path / "rtc_demo_stage.json"
        ).is_file() else str(path.stat().st_mtime_ns)
        key = f"{model_key}-{config.n_eval}-{config.max_gen_toks}"
        cached = sorted(target.glob("*/results_*.json"))
        if _cached(target, key) and cached:
            config.log(f"lm_eval {label}: cached")
            summary[label] = headline_metrics(load_results_file(cached[-1]))
            continue
        config.log(f"lm_eval {label}: rtc_toy_arithmetic, {config.n_eval} problems")
        shutil.rmtree(target, ignore_errors=True)
        results = evaluate_model(path, target, n_problems=config.n_eval, max_gen_toks=config.max_gen_toks)
        summary[label] = headline_metrics(results)
        _mark(target, key)
    write_json(config.out / "summary.json", summary)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items() if k != "log"}
    write_json(config.out / "demo_config.json", settings)
    compare(config, eval_root, sorted((config.out / "sft").glob("*/monitor.jsonl")))
    config.log(f"demo finished in {time.perf_counter() - started:.0f} s; summary: {config.out / 'summary.json'}")
    return summary


def compare(config: DemoConfig, eval_root: Path, curves: list[Path]) -> None:
    """Leaderboard, VR curves, figures and HTML report, by ``rtc compare`` itself."""
    from rtc_metrics.cli import main as rtc_main

    out = config.out
    argv = ["compare", str(eval_root), *map(str, curves), "--reference", "base",
            "--json", str(out / "leaderboard.json"), "--markdown", str(out / "leaderboard.md"),
            "--figures", str(out / "figures"), "--html", str(out / "report.html")]
    config.log("rtc " + " ".join(argv))
    if rtc_main(argv) != 0:
        raise RuntimeError("rtc compare failed on the demo's own results")
