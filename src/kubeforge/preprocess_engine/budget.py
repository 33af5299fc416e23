"""One memory budget for the whole duckdb preprocessing engine, shared between DuckDB and Arrow work.

`memory_limit_mb` bounds what the engine adds to the process on top of its imported libraries
(Python, numpy, pandas, pyarrow and duckdb themselves: a fixed cost of roughly 150 MiB that no
setting can lower). DuckDB's own `memory_limit` covers only its buffer manager; the Arrow record
batches it hands out, the numpy columns of the fit, the Parquet writers' row groups and the
allocators' cached free memory sit outside it. So under a budget:

* DuckDB gets `DUCKDB_SHARE` of it (at least `DUCKDB_MIN_MB`), one worker thread (each thread holds
  its own scan and conversion buffers) and a low allocator flush threshold;
* every streaming stage sizes its Arrow batches so that the batches it holds at once (the one being
  computed, the ones being written, the writers' encoded row groups) take at most `BATCH_SHARE`
  of the budget, from a per-row estimate the stage gives (`MemoryBudget.batch_rows`);
* a numeric column is fitted in memory only when it fits in `FIT_SHARE` of the budget, otherwise
  in a streaming pass (`fitting.fit_numeric_column`);
* between phases, memory that pyarrow's pool and glibc's malloc hold free is returned to the
  system (`MemoryBudget.release`), so one phase's freed buffers do not add to the next one's peak.

Without a budget (`limit_mb` 0) nothing is limited and every stage keeps its fast defaults.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from dataclasses import dataclass

import duckdb
import pyarrow as pa

DUCKDB_SHARE = 0.4
DUCKDB_MIN_MB = 32
BATCH_SHARE = 0.25
FIT_SHARE = 0.4
MIN_BATCH_ROWS = 2048


@dataclass(frozen=True)
class MemoryBudget:
    """The engine's memory budget in MiB (0: unlimited) and how it is divided."""

    limit_mb: int = 0

    @property
    def limited(self) -> bool:
        """Whether a budget is set."""
        return self.limit_mb > 0

    @property
    def duckdb_mb(self) -> int:
        """DuckDB's `memory_limit` in MiB (0: DuckDB's default)."""
        if not self.limited:
            return 0
        return max(DUCKDB_MIN_MB, int(self.limit_mb * DUCKDB_SHARE))

    def batch_rows(self, bytes_per_row: int, default: int) -> int:
        """Rows per Arrow batch for a stage holding about `bytes_per_row` bytes per batch row in all.

        `default` without a budget; under one, at most `default` and at least `MIN_BATCH_ROWS`.
        """
        if not self.limited:
            return default
        share = int(self.limit_mb * BATCH_SHARE * 2**20)
        return max(MIN_BATCH_ROWS, min(default, share // max(1, bytes_per_row)))

    def fits(self, nbytes: int) -> bool:
        """Whether a working set of `nbytes` (a numeric column held for the fit) fits in the budget."""
        return not self.limited or nbytes <= self.limit_mb * FIT_SHARE * 2**20

    def configure(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Give DuckDB its share: memory limit, one thread, allocator flushes above a small peak."""
        if not self.limited:
            return
        connection.execute(f"SET memory_limit = '{self.duckdb_mb}MB'")
        connection.execute("SET threads = 1")
        connection.execute(f"SET allocator_flush_threshold = '{max(8, self.duckdb_mb // 4)}MB'")

    def release(self) -> None:
        """Under a budget, return the free memory pyarrow's pool and glibc's malloc hold to the system."""
        if not self.limited:
            return
        pa.default_memory_pool().release_unused()
        _malloc_trim()


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): give back the free heap top and free pages in every arena (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        library = ctypes.util.find_library("c")
        if library:
            ctypes.CDLL(library).malloc_trim(0)


__all__ = ["BATCH_SHARE", "DUCKDB_MIN_MB", "DUCKDB_SHARE", "FIT_SHARE", "MIN_BATCH_ROWS", "MemoryBudget"]
