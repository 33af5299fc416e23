"""Byte ranges of a launch's output: a tail by default, `offset`/`limit` for the rest, never the whole log
in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TAIL_BYTES = 64 * 1024
"""What a log request without an offset returns: the last this many bytes."""
MAX_LOG_BYTES = 1 << 20
"""The most one log request returns; page on with `offset`."""


@dataclass(frozen=True, slots=True)
class LogSlice:
    """`data` is the log's bytes from `start`; `size` is the log's whole length when it was read."""

    start: int
    size: int
    data: bytes


LogReader = Callable[[str, "int | None", int], LogSlice]
"""A backend's `logs(handle, offset, limit)`: at most `limit` bytes from `offset` (None: the tail)."""
EMPTY = LogSlice(0, 0, b"")


def read_file_range(path: Path, offset: int | None, limit: int) -> LogSlice:
    """At most `limit` bytes of the file from `offset` (None: its last `limit` bytes); empty when it is missing."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = max(size - limit, 0) if offset is None else min(offset, size)
            handle.seek(start)
            return LogSlice(start, size, handle.read(min(limit, size - start)))
    except FileNotFoundError:
        return EMPTY


def slice_of(text: bytes, offset: int | None, limit: int) -> LogSlice:
    """The same range of a log already read into memory (by a backend that can only bound it from the start)."""
    start = max(len(text) - limit, 0) if offset is None else min(offset, len(text))
    return LogSlice(start, len(text), text[start : start + limit])


__all__ = ["DEFAULT_TAIL_BYTES", "EMPTY", "MAX_LOG_BYTES", "LogReader", "LogSlice", "read_file_range", "slice_of"]
