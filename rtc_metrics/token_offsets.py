"""Batch tokenization with character offsets, cheaper for byte-level BPE tokenizers.

The label builder needs, per text, the token ids and which token covers a few character
positions (section boundaries). ``Tokenizer.encode_batch`` computes full ``Encoding``
objects (offsets, word ids, masks...) for that; ``encode_batch_fast`` returns the same ids
without offsets and costs about a third less. For a byte-level BPE tokenizer (GPT-2,
Qwen, Llama 3, DeepSeek, OLMo, gpt-oss) every token stands for a fixed byte string, so
the offsets follow from the ids: token ``k`` covers bytes ``[ends[k-1], ends[k])``,
``ends`` being the running sum of the tokens' byte lengths.

Used only where it is provably the same as the tokenizer's own offsets:

- per tokenizer: the vocabulary maps to byte strings through the byte-level alphabet
  (added tokens: their content), and on probe texts (spaces, newlines, markers) these
  offsets equal ``encode``'s (a post-processor that trims offsets fails this);
- per text: the token byte strings joined give back exactly the text's UTF-8 bytes (no
  normalizer, prefix space or whitespace-eating added token changed it). Byte positions
  become character positions as the tokenizer does it: a token holding part of a
  multi-byte character covers the whole character.

Other texts and tokenizers use ``encode_batch``; either way ids are the tokenizer's own.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate
from operator import itemgetter
from typing import Any

__all__ = ["ByteOffsets", "encode_texts"]

#: Texts checked once per tokenizer against the tokenizer's own offsets.
_PROBES = (
    "Hello world, this is  a test.\n\nNew  paragraph\twith tabs \n",
    " leading space and trailing space ",
    "x=1; y = [2, 3]; print(x + y) # 42!? <b>tag</b> \\n",
    "caf\u00e9 \u2014 it\u2019s \u00bd, \u6570\u5b66 ok",
)


class ByteOffsets:
    """Offsets of one text's tokens, answering what masking asks of an ``Encoding``."""

    __slots__ = ("ends", "starts")

    def __init__(self, ends: list[int], starts: list[int] | None = None) -> None:
        #: ``ends[k]``: the character position where token ``k`` ends (non-decreasing).
        self.ends = ends
        #: ``starts[k]``, or None when every token starts where the previous one ended.
        self.starts = starts

    def char_to_token(self, pos: int) -> int | None:
        """The first token covering character ``pos`` (as ``Encoding.char_to_token``)."""
        i = bisect.bisect_right(self.ends, pos)
        return i if pos >= 0 and i < len(self.ends) else None

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """``(start, end)`` per token, as ``Encoding.offsets``."""
        starts = self.starts if self.starts is not None else [0, *self.ends]  # zip stops at ends
        return list(zip(starts, self.ends, strict=False))


#: 1 for a byte that starts a UTF-8 character, 0 for a continuation byte (0b10xxxxxx).
_LEAD = [0 if 0x80 <= b < 0xC0 else 1 for b in range(256)]


class _ByteTable:
    """Byte string and byte length of every token id of one tokenizer."""

    def __init__(self, backend: Any) -> None:
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        decode = {c: b for b, c in bytes_to_unicode().items()}
        vocab = backend.get_vocab(with_added_tokens=True)
        # An id whose string is not byte-level maps to None: a text using it fails the
        # join check below and takes encode_batch.
        table: list[bytes | None] = [None] * (max(vocab.values(), default=-1) + 1)
        for token, i in vocab.items():
            if all(c in decode for c in token):
                table[i] = bytes(decode[c] for c in token)
        for i, added in backend.get_added_tokens_decoder().items():
            if i < len(table):
                table[i] = added.content.encode("utf-8")
        self.table = table
        self.lengths = [len(b) if b is not None else 0 for b in table]
        # Length in characters; a token that is not whole UTF-8 characters gets one that
        # no text adds up to, which sends its text to the byte-to-character mapping.
        self.char_lengths = [_char_len(b) for b in table]

    def offsets(self, text: str, ids: list[int]) -> ByteOffsets | None:
        """Offsets from the token bytes, or None when they do not spell ``text`` exactly."""
        data = text.encode("utf-8")
        # itemgetter builds the tuple in C (a third of the cost of map(__getitem__)); it
        # returns a bare item for one index, hence the generator for short lists.
        pick = itemgetter(*ids) if len(ids) > 1 else (lambda seq: tuple(seq[i] for i in ids))
        try:
            if b"".join(pick(self.table)) != data:
                return None
        except (TypeError, IndexError):  # an id without a byte string
            return None
        ends = list(accumulate(pick(self.char_lengths)))
        if not ends or ends[-1] == len(text):  # whole characters in every token
            return ByteOffsets(ends)
        byte_ends = list(accumulate(pick(self.lengths)))
        # lead[p]: characters starting in data[:p + 1]. A token ends after the character
        # holding its last byte and starts at the character holding its first byte, so a
        # character split between tokens is in both (as the tokenizer reports it).
        lead = list(accumulate(map(_LEAD.__getitem__, data)))
        ends = [lead[e - 1] for e in byte_ends]
        starts = [lead[s] - 1 for s in (0, *byte_ends[:-1])]
        return ByteOffsets(ends, starts)


_SPLIT = -(1 << 40)


def _char_len(token: bytes | None) -> int:
    try:
        return len(token.decode("utf-8")) if token is not None else 0
    except UnicodeDecodeError:
        return _SPLIT


#: Per backend tokenizer (kept alive with it so ids are not reused): its table, or None
#: when its offsets cannot be derived from bytes.
_TABLES: dict[int, tuple[Any, _ByteTable | None]] = {}


def _table(backend: Any) -> _ByteTable | None:
    cached = _TABLES.get(id(backend))
    if cached is not None and cached[0] is backend:
        return cached[1]
    table: _ByteTable | None = None
    if hasattr(backend, "encode_batch_fast"):
        try:
            table = _ByteTable(backend)
        except Exception:  # an unusual vocabulary: keep the tokenizer's own offsets
            table = None
    if table is not None:
        compared = 0
        for text in _PROBES:
            enc = backend.encode(text, add_special_tokens=False)
            derived = table.offsets(text, enc.ids)
            if derived is None:  # this text would take encode_batch anyway
                continue
            compared += 1
            if derived.offsets != [tuple(o) for o in enc.offsets]:
                table = None
                break
        if not compared:  # nothing shows the derived offsets are the tokenizer's
            table = None
    _TABLES[id(backend)] = (backend, table)
    while len(_TABLES) > 16:
        del _TABLES[next(iter(_TABLES))]
    return table


def encode_texts(backend: Any, texts: Sequence[str]) -> list[tuple[list[int], Any]]:
    """``(ids, tokens)`` per text, no special tokens added; ``tokens`` has ``char_to_token``
    and ``offsets`` (a :class:`ByteOffsets`, or the tokenizer's ``Encoding``)."""
    table = _table(backend)
    out: list[tuple[list[int], Any] | None] = [None] * len(texts)
    if table is not None:
        for i, (text, enc) in enumerate(
            zip(texts, backend.encode_batch_fast(list(texts), add_special_tokens=False), strict=True)
        ):
            ids = enc.ids
            tokens = table.offsets(text, ids)
            if tokens is not None:
                out[i] = (ids, tokens)
    rest = [i for i, item in enumerate(out) if item is None]
    if rest:
        encodings = (backend.encode_batch([texts[i] for i in rest], add_special_tokens=False)
                     if len(rest) > 1 else [backend.encode(texts[rest[0]], add_special_tokens=False)])
        for i, enc in zip(rest, encodings, strict=True):
            out[i] = (enc.ids, enc)
    return out  # type: ignore[return-value]  # every None was filled above
