"""SFT settings: the study's defaults, named profiles, and config files.

Precedence, lowest first: :class:`SFTConfig` defaults (the study's), a named profile,
a config file (JSON or YAML), then command-line flags.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rtc_metrics.io import InputError

__all__ = ["PROFILES", "SFTConfig", "load_config"]


@dataclass
class SFTConfig:
    """Everything one fine-tuning run needs. Defaults follow the study."""

    #: Model folder or hub name (AutoModelForCausalLM / AutoTokenizer).
    model: str = ""
    #: Training data: a JSONL file, or a datasets name (see ``data_split``).
    data: str = ""
    #: Run folder: checkpoints, ``final/``, ``monitor.jsonl``, ``run.json``.
    output_dir: str = "sft-out"
    #: bare | empty | mask | respond, or RENDER:SECTIONS (see rtc_metrics.masking).
    strategy: str = "mask"
    #: Reasoning format name; None detects it from the tokenizer's chat template.
    format: str | None = None
    #: Extra chat-template variables, e.g. {"enable_thinking": true}.
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Split of a datasets name.
    data_split: str = "train"
    #: Records longer than this many tokens are skipped (and counted); None keeps all.
    max_length: int | None = 2048
    #: Full fine-tuning instead of LoRA.
    full: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    #: PEFT target modules; "all-linear" is every linear projection except the output head.
    lora_target: str = "all-linear"
    learning_rate: float = 1e-5
    epochs: float = 3.0
    #: Linear warm-up over this fraction of the steps.
    warmup_ratio: float = 0.1
    batch_size: int = 8
    grad_accum: int = 1
    #: Stop after this many optimizer steps (overrides ``epochs``); None trains ``epochs``.
    max_steps: int | None = None
    #: bf16 when the hardware supports it ("auto"), always (true) or never (false).
    bf16: bool | str = "auto"
    seed: int = 0
    #: Save a checkpoint every this many optimizer steps.
    save_steps: int = 100
    #: Keep at most this many checkpoints (oldest deleted); None keeps all.
    save_total_limit: int | None = None
    logging_steps: int = 10
    #: Trainer loggers: "none", "tensorboard", "wandb", ...
    report_to: str = "none"
    #: Label of the run in the monitor curve (default: the strategy).
    run_label: str | None = None
    #: Collapse monitor: held-out prompts (JSONL with prompt/answer or messages); None
    #: holds out ``monitor_prompts`` records of the training data instead.
    monitor_data: str | None = None
    #: Number of held-out prompts K (0 disables the monitor).
    monitor_prompts: int = 32
    #: Evaluate every N optimizer steps.
    monitor_every: int = 50
    #: Token budget per generation.
    monitor_max_new_tokens: int = 256
    monitor_batch_size: int = 32
    #: Skip an evaluation while the monitor has used more than this fraction of the
    #: training time (the first and last evaluations always run); None disables the check.
    monitor_overhead: float | None = 0.10
    #: Stop training when VR falls below this value; None never stops.
    early_stop_vr: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bf16, str) and self.bf16 != "auto":
            self.bf16 = {"true": True, "false": False}.get(self.bf16.lower(), self.bf16)
        if not (self.bf16 == "auto" or isinstance(self.bf16, bool)):
            raise InputError(f"bf16 must be true, false or 'auto', got {self.bf16!r}")
        for name in ("batch_size", "grad_accum", "save_steps", "logging_steps", "monitor_every",
                     "monitor_max_new_tokens", "monitor_batch_size", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.learning_rate <= 0:
            raise InputError(f"learning_rate must be positive, got {self.learning_rate}")

    @property
    def label(self) -> str:
        """The run's label in logs and the monitor curve."""
        return self.run_label or self.strategy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Named profiles: partial settings layered over the defaults.
PROFILES: dict[str, dict[str, Any]] = {
    # The study's hyper-parameters (the defaults, named for clarity in run records).
    "study": {},
    # Full fine-tuning of a small model on a CPU (the offline demo's scale).
    "cpu-tiny": {
        "full": True,
        "learning_rate": 1e-4,
        "batch_size": 32,
        "bf16": False,
        "save_steps": 50,
        "logging_steps": 10,
        "monitor_prompts": 32,
        "monitor_every": 25,
        "monitor_max_new_tokens": 64,
        "max_length": 512,
    },
}


def _read_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: config file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json and yaml raise different types; both are the user's to fix
        kind = "YAML" if p.suffix in (".yaml", ".yml") else "JSON"
        raise InputError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the config must be a mapping of setting names to values")
    return data


def load_config(
    profile: str | None = None, config_file: str | None = None, overrides: dict[str, Any] | None = None
) -> SFTConfig:
    """Build a config from the defaults, a profile, a file and explicit overrides (in that order).

    Every key in ``overrides`` applies, None included (e.g. ``early_stop_vr=None``).
    """
    settings: dict[str, Any] = {}
    if profile:
        if profile not in PROFILES:
            raise InputError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
        settings.update(PROFILES[profile])
    if config_file:
        settings.update(_read_file(config_file))
    settings.update(overrides or {})
    known = {f.name for f in fields(SFTConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        source = f" in {config_file}" if config_file else ""
        raise InputError(
            f"unknown setting(s){source}: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    try:
        return SFTConfig(**settings)
    except TypeError as exc:
        raise InputError(f"bad settings: {exc}") from None
