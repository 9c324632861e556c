"""Find a model's reasoning format from its chat template, tokenizer or name.

Detection never guesses silently: an unrecognised template raises
:class:`FormatDetectionError` telling the user how to name the format.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtc_metrics.formats import TraceFormat, get_format, list_formats
from rtc_metrics.parsing import prompt_opens_trace

__all__ = [
    "Detection",
    "FormatDetectionError",
    "delimiters_lost_in_decoding",
    "detect_format",
    "explain_detection",
    "render_generation_prompt",
]

_PROBE_MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


class FormatDetectionError(ValueError):
    """The reasoning format could not be determined; the message says what to pass."""


@dataclass(frozen=True)
class Detection:
    """What :func:`explain_detection` found."""

    #: The detected format, with ``prefixed`` set from the rendered generation prompt
    #: when a template was available.
    format: TraceFormat
    #: "high" (template markers and delimiters agree), "medium" (template markers only,
    #: or a model name), or "low".
    confidence: str
    #: Human-readable reasons, in the order they were found.
    evidence: tuple[str, ...] = ()
    #: The tail of the rendered generation prompt, when one was rendered.
    generation_prompt_tail: str | None = None
    #: Delimiters that ``skip_special_tokens=True`` deletes (only with a tokenizer).
    stripped_by_decoding: tuple[str, ...] = field(default=())

    def explain(self) -> str:
        """A few lines for a person: the format, how sure, and why."""
        fmt = self.format
        lines = [
            f"format: {fmt.name}  open={fmt.open!r} close={fmt.close!r} prefixed={fmt.prefixed}",
            f"confidence: {self.confidence}",
        ]
        lines += [f"  - {e}" for e in self.evidence]
        if self.generation_prompt_tail is not None:
            lines.append(f"generation prompt ends: {self.generation_prompt_tail!r}")
        if self.stripped_by_decoding:
            lines.append(
                "WARNING: decoding with skip_special_tokens=True deletes "
                f"{', '.join(map(repr, self.stripped_by_decoding))}: every trace would look "
                "'missing'. Decode with skip_special_tokens=False (rtc's backends do)."
            )
        return "\n".join(lines)


def render_generation_prompt(chat_template: str, **template_kwargs: Any) -> str:
    """Render ``chat_template`` for one user turn with ``add_generation_prompt=True``.

    Uses transformers' own sandboxed Jinja renderer, so templates behave as they do in
    ``apply_chat_template``. Templates that read message content as typed parts are
    retried with ``[{"type": "text", ...}]`` content.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    kwargs = {"bos_token": "<s>", "eos_token": "</s>", **template_kwargs}
    last_error: Exception | None = None
    for messages in (
        _PROBE_MESSAGES,
        [{"role": "user", "content": [{"type": "text", "text": _PROBE_MESSAGES[0]["content"]}]}],
    ):
        try:
            rendered, _ = render_jinja_template(
                [messages], chat_template=chat_template, add_generation_prompt=True, **kwargs
            )
            return rendered[0]
        except Exception as exc:  # templates raise anything; try the next message shape
            last_error = exc
    raise FormatDetectionError(f"the chat template could not be rendered: {last_error}")


def _template_from(source: Any) -> tuple[str | None, str | None, Any]:
    """(chat_template, model_name, tokenizer) from a tokenizer, a template, a path or a name."""
    if not isinstance(source, str | os.PathLike):
        template = getattr(source, "chat_template", None)
        if isinstance(template, dict):  # named templates: take the default one
            template = template.get("default") or next(iter(template.values()), None)
        name = getattr(source, "name_or_path", None)
        return template, name, source
    text = os.fspath(source)
    if "{%" in text or "{{" in text:
        return text, None, None
    path = Path(text)
    if path.is_file():
        if path.suffix == ".json":
            config = json.loads(path.read_text(encoding="utf-8"))
            return config.get("chat_template"), config.get("name_or_path"), None
        return path.read_text(encoding="utf-8"), None, None
    if path.is_dir():
        jinja = path / "chat_template.jinja"
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8"), text, None
        config_file = path / "tokenizer_config.json"
        if config_file.is_file():
            template = json.loads(config_file.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, list):  # [{"name": ..., "template": ...}]
                template = next((t["template"] for t in template if t.get("name") == "default"), None)
            return template, text, None
        return None, text, None
    return None, text, None


def _by_model_name(name: str) -> TraceFormat | None:
    lowered = name.lower()
    best: tuple[int, TraceFormat] | None = None
    for fmt in list_formats():
        for pattern in fmt.model_patterns:
            if pattern in lowered and (best is None or len(pattern) > best[0]):
                best = (len(pattern), fmt)
    return best[1] if best else None


def delimiters_lost_in_decoding(tokenizer: Any, fmt: TraceFormat | str) -> tuple[str, ...]:
    """Delimiters of ``fmt`` that ``tokenizer.decode(..., skip_special_tokens=True)`` deletes.

    A non-empty result means that decoding with special tokens skipped (lm-eval's hf
    backend default) turns every trace into "missing" or "truncated".
    """
    fmt = get_format(fmt)
    lost = []
    for delim in (*fmt.opens, *fmt.closes):
        ids = tokenizer.encode(delim, add_special_tokens=False)
        if delim not in tokenizer.decode(ids, skip_special_tokens=True):
            lost.append(delim)
    return tuple(lost)


def explain_detection(source: Any, template_kwargs: dict[str, Any] | None = None) -> Detection:
    """Detect the reasoning format of ``source`` and say why.

    ``source`` is a tokenizer (anything with ``chat_template``), a chat template string, a
    path (a ``.jinja`` file, ``tokenizer_config.json``, or a model folder) or a model name.
    Raises FormatDetectionError when nothing identifies a known family.
    """
    template, model_name, tokenizer = _template_from(source)
    evidence: list[str] = []
    detection: Detection | None = None
    if template:
        detection = _from_template(template, template_kwargs or {}, evidence)
    if detection is None and model_name:
        fmt = _by_model_name(model_name)
        if fmt is not None:
            evidence.append(f"model name {model_name!r} matches family {fmt.name!r}")
            detection = Detection(fmt, "medium", tuple(evidence))
    if detection is None:
        what = "chat template" if template else f"model {model_name!r}" if model_name else "input"
        raise FormatDetectionError(
            f"could not recognise the reasoning format of this {what}"
            + (f" ({'; '.join(evidence)})" if evidence else "")
            + ". Name it with --format NAME (see `rtc formats`) or give the delimiters with "
            '--open S --close S, e.g. --metadata \'{"rtc_format": "qwen3"}\' in lm_eval.'
        )
    if tokenizer is not None and hasattr(tokenizer, "encode"):
        lost = delimiters_lost_in_decoding(tokenizer, detection.format)
        if lost:
            note = f"special tokens deleted by skip_special_tokens=True: {lost}"
            detection = dataclasses.replace(detection, evidence=(*detection.evidence, note), stripped_by_decoding=lost)
    return detection


def _from_template(template: str, template_kwargs: dict[str, Any], evidence: list[str]) -> Detection | None:
    try:
        prompt = render_generation_prompt(template, **template_kwargs)
    except FormatDetectionError as exc:
        evidence.append(str(exc))
        prompt = None
    candidates = []
    for fmt in list_formats():
        if not fmt.template_markers or not all(m in template for m in fmt.template_markers):
            continue
        delimiter_seen = any(d in template or (prompt and d in prompt) for d in (*fmt.opens, *fmt.closes))
        if not delimiter_seen and fmt.delimiters_in_template:
            continue
        opened = prompt_opens_trace(prompt, fmt) if prompt is not None else fmt.prefixed
        score = (len(fmt.template_markers), opened == fmt.prefixed)
        candidates.append((score, fmt, opened, delimiter_seen))
    if not candidates:
        evidence.append("no registered family's template markers and delimiters were found")
        return None
    # Most specific markers first; then agreement with the rendered prompt; then registry order.
    candidates.sort(key=lambda c: c[0], reverse=True)
    (score, fmt, opened, delimiter_seen) = candidates[0]
    evidence.append(f"template contains {', '.join(map(repr, fmt.template_markers))} (family {fmt.name!r})")
    if delimiter_seen:
        evidence.append(f"delimiters {fmt.open!r} / {fmt.close!r} appear in the template")
    if prompt is not None:
        state = "ends inside an open trace" if opened else "does not open a trace"
        evidence.append(f"the rendered generation prompt {state}")
    runners_up = [c[1].name for c in candidates[1:] if c[0] == score]
    if runners_up:
        evidence.append(f"equally specific families: {', '.join(runners_up)}")
    confidence = "high" if delimiter_seen and prompt is not None and not runners_up else "medium"
    tail = prompt[-40:] if prompt is not None else None
    return Detection(fmt.with_prefixed(opened), confidence, tuple(evidence), tail)


def detect_format(source: Any, template_kwargs: dict[str, Any] | None = None) -> TraceFormat:
    """The reasoning format of a tokenizer, chat template, path or model name.

    ``prefixed`` is taken from rendering the template's generation prompt when a template
    is available. See :func:`explain_detection` for the reasons behind the answer.
    """
    return explain_detection(source, template_kwargs).format
