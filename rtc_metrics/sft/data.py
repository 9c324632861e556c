"""Training records: reading, converting to chats, held-out prompts, and encoding.

A record is either ``{"messages": [...]}`` (a chat ending with the assistant answer) or
an instruction/response pair: ``instruction`` | ``prompt`` | ``question`` (with optional
``input`` appended and optional ``system``) and ``response`` | ``output`` | ``answer`` |
``completion``. Every error names the file and line (or the dataset row).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtc_metrics.formats import TraceFormat
from rtc_metrics.io import InputError, iter_jsonl
from rtc_metrics.mask_audit import audit_many
from rtc_metrics.masking import EncodingError, MaskSpec, encode_many

__all__ = ["EncodedData", "HeldOut", "Record", "encode_records", "load_records", "split_holdout"]

PROMPT_FIELDS = ("instruction", "prompt", "question")
ANSWER_FIELDS = ("response", "output", "answer", "completion")


@dataclass(frozen=True)
class Record:
    """One training chat and where it came from."""

    #: "file.jsonl:12" or "dataset[split]#12", for error messages.
    where: str
    #: The chat, ending with the assistant answer.
    messages: list[dict[str, str]]
    #: Reference answer for accuracy (the record's ``answer`` field when present).
    reference: str | None = None


@dataclass(frozen=True)
class HeldOut:
    """A held-out prompt for the collapse monitor."""

    #: The chat without the answer (ends with a user turn).
    messages: list[dict[str, str]]
    #: Reference answer, or None when accuracy cannot be scored.
    reference: str | None


def to_chat(record: Mapping[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    """(messages, reference) from one record; ValueError says what is missing."""
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a list of {\"role\", \"content\"} objects")
        reference = record.get("reference", record.get("answer"))
        return messages, reference if isinstance(reference, str) else None
    prompt_key = next((k for k in PROMPT_FIELDS if k in record), None)
    answer_key = next((k for k in ANSWER_FIELDS if k in record), None)
    if prompt_key is None or answer_key is None:
        raise ValueError(
            "expected 'messages', or a prompt field (" + "/".join(PROMPT_FIELDS) + ") and an answer field ("
            + "/".join(ANSWER_FIELDS) + f"); found keys {sorted(record)}"
        )
    prompt, answer = record[prompt_key], record[answer_key]
    if not isinstance(prompt, str) or not isinstance(answer, str):
        raise ValueError(f"'{prompt_key}' and '{answer_key}' must be strings")
    extra = record.get("input")
    if isinstance(extra, str) and extra.strip():
        prompt = f"{prompt}\n\n{extra}"
    messages = []
    if isinstance(record.get("system"), str) and record["system"]:
        messages.append({"role": "system", "content": record["system"]})
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return messages, answer


def _rows(source: str, split: str) -> list[tuple[str, Mapping[str, Any]]]:
    if Path(source).suffix in (".jsonl", ".json") or Path(source).is_file():
        return [(f"{source}:{lineno}", rec) for lineno, rec in iter_jsonl(source)]
    try:
        import datasets

        dataset = datasets.load_dataset(source, split=split)
    except Exception as exc:  # hub, network and config errors all mean: cannot read this source
        raise InputError(
            f"{source}: not a JSONL file and not a loadable dataset ({type(exc).__name__}: {exc}); "
            "give a .jsonl path or a datasets name with --data-split"
        ) from None
    return [(f"{source}[{split}]#{i}", row) for i, row in enumerate(dataset)]


def load_records(source: str, split: str = "train") -> list[Record]:
    """Read every record of ``source`` (JSONL path or datasets name) as a chat.

    Raises InputError naming the line of the first malformed record.
    """
    records = []
    for where, row in _rows(source, split):
        try:
            messages, reference = to_chat(row)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        records.append(Record(where, messages, reference))
    if not records:
        raise InputError(f"{source}: no records")
    return records


def load_prompts(source: str, split: str = "train") -> list[HeldOut]:
    """Held-out prompts from a file of records; an answer, when present, is the reference."""
    out = []
    for where, row in _rows(source, split):
        try:
            if "messages" in row:
                messages, reference = to_chat(row)
                if messages and messages[-1].get("role") == "assistant":
                    reference = reference or messages[-1].get("content")
                    messages = messages[:-1]
            else:
                prompt_key = next((k for k in PROMPT_FIELDS if k in row), None)
                if prompt_key is None or not isinstance(row[prompt_key], str):
                    raise ValueError(f"expected 'messages' or a prompt field ({'/'.join(PROMPT_FIELDS)})")
                messages = [{"role": "user", "content": row[prompt_key]}]
                answer_key = next((k for k in ANSWER_FIELDS if k in row), None)
                reference = row.get(answer_key) if answer_key else None
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        if not messages or messages[-1].get("role") != "user":
            raise InputError(f"{where}: a monitor prompt must end with a user message")
        out.append(HeldOut(messages, str(reference) if reference is not None else None))
    if not out:
        raise InputError(f"{source}: no prompts")
    return out


def split_holdout(records: Sequence[Record], k: int, seed: int) -> tuple[list[Record], list[HeldOut]]:
    """Hold out ``k`` records (chosen with ``seed``) as monitor prompts; the rest train."""
    if k <= 0:
        return list(records), []
    if k >= len(records):
        raise InputError(
            f"cannot hold out {k} monitor prompts from {len(records)} records; lower --monitor-prompts "
            "or give --monitor-data"
        )
    held = set(random.Random(seed).sample(range(len(records)), k))
    train = [r for i, r in enumerate(records) if i not in held]
    prompts = [HeldOut(records[i].messages[:-1], records[i].reference) for i in sorted(held)]
    return train, prompts


@dataclass(frozen=True)
class EncodedData:
    """Encoded training rows and what was dropped."""

    rows: list[dict[str, list[int]]]
    #: Records skipped for exceeding ``max_length`` tokens.
    too_long: int
    #: Trained (label != -100) tokens over all rows.
    trained_tokens: int
    total_tokens: int


def encode_records(
    records: Sequence[Record],
    tokenizer: Any,
    spec: MaskSpec,
    fmt: TraceFormat,
    template_kwargs: Mapping[str, Any] | None = None,
    max_length: int | None = None,
    chunk: int = 512,
) -> EncodedData:
    """Encode records in chunks; an unencodable record raises InputError naming its line."""
    rows, too_long, trained, total = [], 0, 0, 0
    for start in range(0, len(records), chunk):
        batch = records[start : start + chunk]
        try:
            encoded = encode_many([r.messages for r in batch], tokenizer, spec, fmt, template_kwargs)
            # Before any training: refuse labels that would teach the wrong thing.
            audit_many(encoded, [r.messages for r in batch], tokenizer, template_kwargs)
        except EncodingError as exc:
            where = batch[exc.index].where if exc.index is not None else f"records {start}+"
            message = str(exc).split(": ", 1)[1] if exc.index is not None else str(exc)
            raise InputError(f"{where}: {message}") from None
        for enc in encoded:
            if max_length is not None and len(enc.input_ids) > max_length:
                too_long += 1
                continue
            rows.append(enc.as_dict())
            total += len(enc.labels)
            trained += sum(1 for x in enc.labels if x != -100)
    if not rows:
        raise InputError(
            f"every record is longer than max_length={max_length} tokens; raise --max-length"
        )
    return EncodedData(rows, too_long, trained, total)
