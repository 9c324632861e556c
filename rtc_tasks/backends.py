"""``rtc-hf``: lm-eval's hf backend, decoding so that trace delimiters survive.

lm-eval's ``HFLM`` decodes generations with ``skip_special_tokens=True`` and no model
argument changes that, so families whose delimiters are special tokens lose them and every
trace looks "missing". ``rtc-hf`` decodes with special tokens kept *only* where they are
part of a registered reasoning delimiter (or of ``rtc_open``/``rtc_close`` given as model
arguments): EOS, padding and chat markup are still dropped.

It also refuses ``think_end_token`` (which deletes the trace before any task sees it).
lm-eval builds the model before it loads tasks, so this backend is only reachable through
``rtc eval --model rtc-hf`` or Python (``import rtc_tasks.backends`` registers it).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from rtc_metrics.formats import list_formats
from rtc_tasks.settings import RTCSettingsError, register_special_token_backend

__all__ = ["RTCHFLM", "delimiter_token_ids"]


def delimiter_token_ids(tokenizer: Any, delimiters: tuple[str, ...]) -> frozenset[int]:
    """Ids of the tokenizer's special added tokens whose text occurs inside a delimiter.

    Inside, not equal: gpt-oss opens its trace with ``<|channel|>analysis<|message|>``,
    three tokens, two of them special.
    """
    keep = set()
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        content = getattr(token, "content", str(token))
        if content and any(content in d for d in delimiters):
            keep.add(int(token_id))
    return frozenset(keep)


@register_model("rtc-hf")
class RTCHFLM(HFLM):
    """HFLM that keeps special-token trace delimiters in decoded generations."""

    def __init__(
        self, *args: Any, rtc_open: str | None = None, rtc_close: str | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("think_end_token") not in (None, ""):
            raise RTCSettingsError(
                f"rtc-hf: think_end_token={kwargs['think_end_token']!r} deletes the reasoning trace "
                "before any task sees it; remove it from --model_args (rtc splits trace and answer itself)"
            )
        super().__init__(*args, **kwargs)
        delimiters = tuple(d for f in list_formats() for d in (*f.opens, *f.closes))
        delimiters += tuple(d for d in (rtc_open, rtc_close) if d)
        self._rtc_keep_ids = delimiter_token_ids(self.tokenizer, delimiters)
        self._rtc_special_ids = frozenset(
            int(i) for i, t in self.tokenizer.added_tokens_decoder.items() if getattr(t, "special", False)
        ) | frozenset(self.tokenizer.all_special_ids)
        register_special_token_backend(self)

    def tok_decode(self, tokens: Any, skip_special_tokens: bool = True) -> str:
        if not skip_special_tokens:
            return super().tok_decode(tokens, skip_special_tokens=False)
        if isinstance(tokens, int):
            tokens = [tokens]
        kept = [t for t in tokens if t in self._rtc_keep_ids or t not in self._rtc_special_ids]
        return self.tokenizer.decode(kept, skip_special_tokens=False)
