"""Write the train/validation/test splits in one streaming pass over the typed source rows.

DuckDB computes the typed columns and each row's split code; its Arrow record batches are routed
to one Parquet writer per split, in row order, while DuckDB computes the next batch (a writer
thread per split). One pass instead of one query per split: the source is read and typed once.

Batch size: `BATCH_ROWS` without a memory budget; under one, what keeps the batches held at once
(the one DuckDB converts, the one being split, the parts being written and encoded) within the
budget's batch share (`batch_rows`). Each written batch is one row group, so the writers hold no
more than a batch either.

Writer settings: dictionary encoding for text columns (categories repeat), plain encoding for
the others (numeric values seldom repeat, so a dictionary attempt would be wasted work); snappy.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from kubeforge.preprocess_engine.budget import MemoryBudget

BATCH_ROWS = 1 << 19
_BYTES_PER_VALUE = 16  # an Arrow value with its share of offsets, validity and string data, roughly
_BATCHES_HELD = 3  # the batch DuckDB converts, the one being split, its parts in the writers


def batch_rows(budget: MemoryBudget, columns: int) -> int:
    """Rows per Arrow batch of `columns` columns: `BATCH_ROWS`, or fewer to fit the budget's batch share."""
    return budget.batch_rows(_BATCHES_HELD * _BYTES_PER_VALUE * max(1, columns), BATCH_ROWS)


def write_splits(
    connection: duckdb.DuckDBPyConnection,
    query: str,
    code_column: str,
    destinations: Mapping[int, Path],
    rows_per_batch: int = BATCH_ROWS,
) -> None:
    """Run `query` and write its rows whose `code_column` is a key of `destinations` to that Parquet file.

    The code column itself is not written; rows with other codes are skipped. Each file gets the
    query's other columns even when no row goes to it.
    """
    reader = connection.sql(query).to_arrow_reader(rows_per_batch)
    schema = reader.schema.remove(reader.schema.get_field_index(code_column))
    text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    with ExitStack() as stack:
        writers = {
            code: stack.enter_context(pq.ParquetWriter(path, schema, use_dictionary=text, compression="snappy"))
            for code, path in destinations.items()
        }
        threads = {code: stack.enter_context(ThreadPoolExecutor(max_workers=1)) for code in writers}
        pending: dict[int, Future[None]] = {}  # per split, one batch is written while DuckDB computes the next
        for batch in reader:
            codes = batch.column(code_column).to_numpy(zero_copy_only=False)
            rows = batch.drop_columns([code_column])
            for code, writer in writers.items():
                part = rows.filter(pa.array(codes == code))
                if code in pending:
                    pending.pop(code).result()
                if part.num_rows:
                    pending[code] = threads[code].submit(writer.write_batch, part)
        for write in pending.values():
            write.result()


__all__ = ["BATCH_ROWS", "batch_rows", "write_splits"]
