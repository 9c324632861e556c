"""Per-run settings of the rtc tasks: format resolution, data overrides, and fail-fast checks.

Everything here reads the task's ``metadata``, which lm-eval fills from ``--model_args``
merged with ``--metadata`` (CLI) or from ``TaskManager(metadata=...)`` (Python).

Metadata keys (all optional):

``rtc_format``            registry name (``rtc formats`` lists them)
``rtc_open``/``rtc_close`` custom delimiters (instead of ``rtc_format``)
``rtc_prefixed``          true/false: force "the prompt pre-opened the trace" for every
                          instance (chat APIs, whose server-side template lm-eval never
                          sees); default: decided per instance from the prompt
``rtc_data_files``        a local JSONL for the evaluation split: a path (every rtc task)
                          or ``{task_name: path}``; relative paths resolve against the CWD
``rtc_answer_metric``     which of the task's metrics is "correct" for rpass@1
``rtc_short_budget``      max_gen_toks below this warns (default 1024; tasks with short traces lower it)
``rtc_keeps_special_tokens`` true when the backend decodes without skipping special tokens
                          (vLLM; ``rtc eval`` sets it for ``--model vllm`` and ``rtc-hf``)
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from pathlib import Path
from typing import Any

from rtc_metrics.detection import FormatDetectionError, delimiters_lost_in_decoding, detect_format
from rtc_metrics.formats import TraceFormat, get_format

__all__ = [
    "DEFAULT_MAX_GEN_TOKS",
    "RTCSettingsError",
    "check_backend",
    "check_generation_kwargs",
    "data_override",
    "register_special_token_backend",
    "resolve_format",
    "safe_generation_kwargs",
]

log = logging.getLogger(__name__)

#: Default generation budget: long enough for a reasoning trace to close (Qwen3 and
#: DeepSeek-R1 recommend 32k). Override with ``--gen_kwargs max_gen_toks=N``; lm-eval's hf
#: backend needs it below the model's max_length.
DEFAULT_MAX_GEN_TOKS = 32768

#: Stops shorter budgets than this are likely to truncate traces (warned, not refused).
_SHORT_BUDGET = 1024


class RTCSettingsError(ValueError):
    """A run configured so that trace structure cannot be measured; says what to change."""


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


# --- format -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def _tokenizer_for(metadata: dict[str, Any]) -> Any:
    name = metadata.get("tokenizer") or metadata.get("pretrained")
    if not isinstance(name, str) or not name:
        return None
    try:
        return _load_tokenizer(name)
    except Exception as exc:  # offline, gated, not a model: fall back to the name alone
        log.info("rtc: could not load tokenizer %r (%s); detecting from the name", name, exc)
        return None


def resolve_format(metadata: dict[str, Any], task_name: str = "rtc task") -> TraceFormat:
    """The run's TraceFormat: ``rtc_format`` or ``rtc_open``/``rtc_close``, else detected.

    Detection reads the chat template of ``tokenizer``/``pretrained`` (from --model_args).
    Raises RTCSettingsError saying which metadata to pass when nothing identifies it.
    """
    name = metadata.get("rtc_format")
    open_, close = metadata.get("rtc_open"), metadata.get("rtc_close")
    if name and (open_ or close):
        raise RTCSettingsError(
            f"{task_name}: give either rtc_format or rtc_open/rtc_close in --metadata, not both"
        )
    if bool(open_) != bool(close):
        raise RTCSettingsError(
            f"{task_name}: custom delimiters need both rtc_open and rtc_close in --metadata"
        )
    if name:
        return get_format(str(name))
    if open_:
        return TraceFormat(open=str(open_), close=str(close))
    source = _tokenizer_for(metadata) or metadata.get("tokenizer") or metadata.get("pretrained")
    if not source:
        raise RTCSettingsError(
            f'{task_name}: the reasoning format is unknown: pass --metadata \'{{"rtc_format": "NAME"}}\' '
            '(see `rtc formats`) or \'{"rtc_open": "<think>", "rtc_close": "</think>"}\', '
            "or a pretrained= model whose chat template rtc can recognise"
        )
    try:
        return detect_format(source)
    except FormatDetectionError as exc:
        raise RTCSettingsError(f"{task_name}: {exc}") from None


# --- data -------------------------------------------------------------------------------
def data_override(metadata: dict[str, Any], task_name: str, splits: list[str]) -> dict[str, Any] | None:
    """Config keys that point every split in ``splits`` at the JSONL named by ``rtc_data_files``.

    None when no override applies to ``task_name``.
    """
    spec = metadata.get("rtc_data_files")
    if not spec:
        return None
    if isinstance(spec, dict):
        if task_name not in spec:
            return None
        spec = spec[task_name]
    if not isinstance(spec, str | os.PathLike):
        raise RTCSettingsError(
            f"{task_name}: rtc_data_files must be a path or {{task_name: path}}, got {type(spec).__name__}"
        )
    path = Path(spec).expanduser().absolute()
    if not path.is_file():
        raise RTCSettingsError(f"{task_name}: rtc_data_files {str(spec)!r}: no such file ({path})")
    # Absolute: datasets resolves relative data_files against its own cache, not the CWD.
    return {
        "dataset_path": "json",
        "dataset_name": None,
        "custom_dataset": None,  # a task that generates its data reads the file instead
        "dataset_kwargs": {"data_files": dict.fromkeys(splits, str(path))},
    }


# --- generation -------------------------------------------------------------------------
def safe_generation_kwargs(generation_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """A wrapped task's generation kwargs made trace-safe: no stops, a trace-sized budget."""
    kwargs = dict(generation_kwargs or {})
    kwargs["until"] = []
    kwargs["max_gen_toks"] = max(int(kwargs.get("max_gen_toks") or 0), DEFAULT_MAX_GEN_TOKS)
    return kwargs


def check_generation_kwargs(
    generation_kwargs: dict[str, Any], fmt: TraceFormat, task_name: str, short_budget: int | None = None
) -> None:
    """Refuse stop sequences that cut traces; warn about budgets below ``short_budget``.

    ``short_budget`` defaults to 1024 tokens; a task whose traces are known to be short sets
    its own in the YAML metadata (``rtc_short_budget``).
    """
    until = generation_kwargs.get("until")
    if isinstance(until, str):
        until = [until]
    for stop in until or []:
        if not isinstance(stop, str):
            continue
        if "\n\n" in stop or (stop and not stop.strip()):
            raise RTCSettingsError(
                f"{task_name}: the stop sequence {stop!r} ends generation at the first line break "
                "or blank line, cutting reasoning traces; set generation_kwargs until: [] "
                "(or --gen_kwargs until=[])"
            )
        for delim in (*fmt.opens, *fmt.closes):
            if delim in stop or stop in delim:
                raise RTCSettingsError(
                    f"{task_name}: the stop sequence {stop!r} overlaps the trace delimiter {delim!r}; "
                    "remove it from generation_kwargs until (or --gen_kwargs until=[])"
                )
    budget = generation_kwargs.get("max_gen_toks")
    if isinstance(budget, int) and budget < int(short_budget or _SHORT_BUDGET):
        log.warning(
            "%s: max_gen_toks=%d is short for reasoning traces; unfinished traces count as truncated",
            task_name,
            budget,
        )


_SPECIAL_TOKEN_BACKENDS: weakref.WeakSet = weakref.WeakSet()


def register_special_token_backend(model: Any) -> None:
    """Record a live model that keeps special-token delimiters in its decoded outputs."""
    _SPECIAL_TOKEN_BACKENDS.add(model)


def check_backend(metadata: dict[str, Any], fmt: TraceFormat, task_name: str) -> None:
    """Refuse settings under which the backend destroys traces before rtc sees them."""
    think_end = metadata.get("think_end_token")
    if think_end not in (None, "", "None"):
        raise RTCSettingsError(
            f"{task_name}: think_end_token={think_end!r} makes the backend delete the reasoning trace before "
            "any task sees it, so structure cannot be measured; remove think_end_token from --model_args "
            "(rtc splits the trace from the answer itself)"
        )
    if _truthy(metadata.get("rtc_keeps_special_tokens")) or len(_SPECIAL_TOKEN_BACKENDS):
        return
    tokenizer = _tokenizer_for(metadata)
    if tokenizer is None:
        return
    lost = delimiters_lost_in_decoding(tokenizer, fmt)
    if lost:
        raise RTCSettingsError(
            f"{task_name}: this tokenizer's special tokens {', '.join(map(repr, lost))} are deleted by "
            "lm-eval's hf backend (skip_special_tokens=True), so every trace would look missing; run "
            "`rtc eval --model rtc-hf ...` (same --model_args), or with a backend that keeps special "
            "tokens (vLLM) add --metadata '{\"rtc_keeps_special_tokens\": true}'"
        )
