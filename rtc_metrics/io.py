"""Reading JSONL line by line with precise errors, and writing files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["InputError", "atomic_write", "iter_jsonl", "write_json"]


class InputError(ValueError):
    """Bad user input; the message names the file, the line and the fix."""


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line, streaming.

    Raises InputError naming the file and line for a corrupt line or a non-object record.
    Python's json accepts the bare ``NaN`` that lm-eval writes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("r", encoding="utf-8", errors="strict") as handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    hint = " (the file may be cut off mid-write)" if not line.endswith("\n") else ""
                    raise InputError(f"{path}:{lineno}: not valid JSON: {exc.msg}{hint}") from None
                if not isinstance(record, dict):
                    raise InputError(f"{path}:{lineno}: expected a JSON object per line, got {type(record).__name__}")
                yield lineno, record
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno + 1}: not UTF-8 text ({exc.reason})") from None


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    Readers never see a half-written file; on error the original is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as strict JSON (NaN becomes null), atomically."""
    with atomic_write(path) as handle:
        json.dump(_strict(data), handle, indent=2, allow_nan=False)
        handle.write("\n")


def _strict(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value
