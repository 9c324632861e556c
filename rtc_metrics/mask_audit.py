"""Audit SFT labels before training: refuse records whose masks would teach the wrong thing.

Checks, per encoded record (:func:`audit`):

``no_answer_token``   no token of the final answer is trained (everything masked, or the
                      answer merged into masked tokens): the record teaches nothing.
``open_without_close`` the final trace's opening delimiter is trained while every token of
                      its closing delimiter is masked: the model learns to open traces and
                      never to close them (truncation). Allowed when the strategy masks the
                      closing delimiter on purpose (``close_only``, section ``close``).
``straddled``         a boundary between a masked and a trained section falls inside one
                      token (e.g. ``"\\n"`` + ``"\\n"`` merged into ``"\\n\\n"`` across the end of a
                      masked trace): that token is masked, so the text trained is not the
                      text the template rendered. (A merge between two sections trained
                      alike changes no label and passes; :attr:`Encoded.straddled` lists all.)
``turn_shift``        (chats with earlier assistant turns) the full chat does not start with
                      the generation prompt of ``messages[:-1]`` (less its assistant header):
                      the template rewrites earlier turns once a later answer follows (as
                      Qwen3 drops earlier reasoning), so the final turn's spans would shift.
                      The final turn is masked on its own: spans are located only after the
                      generation prompt of the earlier turns.

:func:`audit_many` raises :class:`MaskAuditError` naming the first failing record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rtc_metrics.masking import IGNORE_INDEX, Encoded, EncodingError, Section, _Renderer, _token_span

__all__ = ["AuditProblem", "MaskAuditError", "audit", "audit_many"]


class MaskAuditError(EncodingError):
    """A record whose labels fail the audit; the message names the record, the check and the fix."""


@dataclass(frozen=True)
class AuditProblem:
    """One failed check."""

    #: ``no_answer_token`` | ``open_without_close`` | ``straddled`` | ``turn_shift``.
    check: str
    #: What is wrong and what to do.
    message: str


def _trained(enc: Encoded, lo: int, hi: int) -> list[bool]:
    """Per token overlapping characters [lo, hi): is it trained?"""
    first, last = _token_span(enc.encoding, lo, hi)
    return [enc.labels[i] != IGNORE_INDEX for i in range(first, last)]


def _context(text: str, pos: int) -> str:
    return repr(text[max(0, pos - 12) : pos]) + " | " + repr(text[pos : pos + 12])


def audit(
    enc: Encoded,
    messages: Sequence[Mapping[str, Any]],
    tokenizer: Any = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[AuditProblem]:
    """The problems of one encoded record (empty when it passes).

    ``tokenizer`` (the one that encoded it) enables the multi-turn ``turn_shift`` check.
    """
    problems: list[AuditProblem] = []
    layout, text = enc.layout, enc.layout.text
    answer = str(messages[-1].get("content", "")).strip()
    pos = text.find(answer, layout.response_start) if answer else -1
    if pos < 0 or not any(_trained(enc, pos, pos + len(answer))):
        problems.append(
            AuditProblem(
                "no_answer_token",
                "no token of the assistant answer is trained"
                + (" (the answer is not in the rendered text)" if pos < 0 else "")
                + "; check the strategy's masked sections and the chat template",
            )
        )
    if layout.open_span is not None and layout.close_span is not None and Section.CLOSE not in enc.spec.masked:
        opened = any(_trained(enc, *layout.open_span))
        close_tokens = _trained(enc, *layout.close_span)
        if opened and close_tokens and not any(close_tokens):
            problems.append(
                AuditProblem(
                    "open_without_close",
                    f"the opening delimiter {text[slice(*layout.open_span)]!r} is trained but the closing "
                    f"{text[slice(*layout.close_span)]!r} is masked: the model would learn to open traces "
                    "and not to close them; mask both (strategy mask) or neither, or use close_only on purpose",
                )
            )
    spans = layout.section_spans()
    masked = [spans[s] for s in enc.spec.masked if s in spans]
    if Section.CLOSE in enc.spec.masked and layout.close_span is not None:
        masked.append(layout.close_span)

    def is_masked(pos: int) -> bool:
        return any(lo <= pos < hi for lo, hi in masked)

    for b in enc.straddled:
        if is_masked(b - 1) == is_masked(b):
            continue  # one token over two sections trained alike: the trained text is the rendered text
        problems.append(
            AuditProblem(
                "straddled",
                f"a token spans the section boundary at character {b} ({_context(text, b)}): the trained "
                "tokens differ from the rendered text there; the answer or trace text next to the "
                "boundary likely starts or ends with whitespace that merges with the template's",
            )
        )
    earlier = [m for m in messages[:-1] if m.get("role") == "assistant"]
    if earlier and tokenizer is not None:
        renderer = _Renderer.for_tokenizer(tokenizer, template_kwargs)
        prompt = renderer.render([list(messages[:-1])], True)[0]
        full = renderer.render([list(messages)], False)[0]
        tail = renderer.generation_tail or ""
        before = prompt[: len(prompt) - len(tail)] if tail and prompt.endswith(tail) else prompt
        if not full.startswith(before):
            at = next((i for i, (x, y) in enumerate(zip(full, before, strict=False)) if x != y), 0)
            problems.append(
                AuditProblem(
                    "turn_shift",
                    f"the full chat renders the earlier turns differently from the generation prompt at "
                    f"character {at} ({_context(full, at)} vs {_context(before, at)}): the template rewrites "
                    "earlier turns once a later answer follows, so the final turn's spans would shift; "
                    "split the chat into one record per assistant turn",
                )
            )
    return problems


def audit_many(
    encoded: Sequence[Encoded],
    chats: Sequence[Sequence[Mapping[str, Any]]],
    tokenizer: Any = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`MaskAuditError` (with ``index``) at the first record that fails :func:`audit`."""
    for i, (enc, messages) in enumerate(zip(encoded, chats, strict=True)):
        problems = audit(enc, messages, tokenizer, template_kwargs)
        if problems:
            detail = "; ".join(f"{p.check}: {p.message}" for p in problems)
            raise MaskAuditError(f"record {i}: mask audit failed ({enc.spec.name}): {detail}", index=i)
