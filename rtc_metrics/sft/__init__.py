"""The SFT companion: fine-tune a chat model with a loss-masking strategy and watch for collapse.

Pieces: :mod:`~rtc_metrics.sft.config` (settings, profiles, config files),
:mod:`~rtc_metrics.sft.data` (records with line-numbered errors),
:mod:`~rtc_metrics.sft.monitor` (the collapse monitor callback) and
:mod:`~rtc_metrics.sft.train` (Trainer + PEFT setup, checkpoints, resume).
Training needs the ``sft`` extra (peft, accelerate).
"""

from rtc_metrics.sft.config import PROFILES, SFTConfig, load_config

__all__ = ["PROFILES", "SFTConfig", "load_config"]
