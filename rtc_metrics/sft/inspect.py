"""Show what the loss sees: a record's tokens coloured trained / masked."""

from __future__ import annotations

from rich.text import Text

from rtc_metrics.masking import IGNORE_INDEX, Encoded

__all__ = ["MASKED_STYLE", "TRAINED_STYLE", "render_encoded", "summary_line"]

TRAINED_STYLE = "bold green"
MASKED_STYLE = "dim red"


def _visible(piece: str) -> str:
    # Whitespace-only tokens would be invisible; show newlines and tabs as marks.
    return piece.replace("\t", "→").replace("\n", "↵\n")


def render_encoded(enc: Encoded, separators: bool = True, brackets: bool = False) -> Text:
    """The training text token by token: trained tokens green, masked tokens dim red.

    With ``separators``, a thin ``|`` between tokens shows where the tokenizer cut; with
    ``brackets`` (for output without colour), masked tokens are also wrapped in ``[...]``.
    """
    text = Text()
    previous = 0
    for (start, end), label in zip(enc.offsets, enc.labels, strict=True):
        if start > previous:  # characters no token covers (e.g. spaces a pre-tokenizer drops)
            text.append(_visible(enc.layout.text[previous:start]), style="grey50")
        previous = max(previous, end)
        piece = _visible(enc.layout.text[start:end])
        if label == IGNORE_INDEX:
            text.append(f"[{piece}]" if brackets else piece, style=MASKED_STYLE)
        else:
            text.append(piece, style=TRAINED_STYLE)
        if separators:
            text.append("|", style="grey50")
    if previous < len(enc.layout.text):
        text.append(_visible(enc.layout.text[previous:]), style="grey50")
    return text


def summary_line(enc: Encoded) -> str:
    """Counts of trained and masked tokens, and any boundary that falls inside a token."""
    trained = sum(1 for x in enc.labels if x != IGNORE_INDEX)
    line = (
        f"strategy {enc.spec.name}: {len(enc.labels)} tokens, {trained} trained (green), "
        f"{len(enc.labels) - trained} masked (red, or [bracketed] without colour)"
        + ("; empty trace injected" if enc.layout.injected else "")
    )
    if enc.straddled:
        line += f"; WARNING: section boundary inside a token at chars {list(enc.straddled)} (token masked)"
    return line
