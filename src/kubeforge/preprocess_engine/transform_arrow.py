"""Apply a fitted preprocessor to a Parquet split in a stream: the model-input columns as float32 Parquet.

Batch by batch (bounded memory: a batch of input and output rows at a time) it computes exactly
`FittedPreprocessor.transform`: numeric columns are imputed, clipped and scaled in float64, then
stored as float32; categorical columns are one-hot or ordinal coded through Arrow dictionaries, so
each distinct text is looked up once per batch. An unknown category follows the column's policy
(`kubeforge.categories`); under "error" it stops the run naming the column and the value, and
nothing is written.

Batch size: `BATCH_ROWS`, or under a memory budget (`memory_limit_mb`) fewer, so that the input
batch, the output batch being built, the one being written and its encoded row group stay within
the budget's batch share; the input is then read in a buffered stream (no pre-buffering of the whole file, nor a column
chunk at once),
and the pool's freed memory is handed back at the end.

Reading and transforming the next batch overlaps with writing the last one (a writer thread).
Writer settings (`WRITER_OPTIONS`): plain encoding with snappy compression. Dictionary encoding
would shrink the one-hot columns by about a quarter but costs about a third more writing time,
and the scaled numeric columns have next to no repeated values to gain from it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubeforge.artifacts import atomic_output
from kubeforge.categories import resolve_unknown
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.budget import MemoryBudget
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor, NumericFeature

BATCH_ROWS = 1 << 18
WRITER_OPTIONS: dict[str, Any] = {"use_dictionary": False, "compression": "snappy"}
_READ_BUFFER = 1 << 20  # bytes per column stream when reading under a budget


def batch_rows(preprocessor: FittedPreprocessor, budget: MemoryBudget) -> int:
    """Rows per batch: `BATCH_ROWS`, or fewer to keep a batch's input and output copies in the budget's share.

    Per row: the input features (up to 8 bytes each, and a float64 working copy of one column) and
    the float32 output columns three times (being built, being written, encoded in the writer).
    """
    per_row = 16 * len(preprocessor.features) + 3 * 4 * len(preprocessor.output_columns)
    return budget.batch_rows(per_row, BATCH_ROWS)


def transform_parquet(
    preprocessor: FittedPreprocessor, source: Path, destination: str | Path, memory_limit_mb: int = 0
) -> int:
    """Write the transformed rows of the Parquet file `source` to `destination`; returns the row count.

    `memory_limit_mb` (0: none) bounds the batches' memory (`batch_rows`).
    """
    budget = MemoryBudget(memory_limit_mb)
    try:
        present = set(pq.read_schema(source).names)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{source}: cannot be read as Parquet: {exc}") from exc
    missing = [feature.name for feature in preprocessor.features if feature.name not in present]
    if missing:
        raise InputError(f"{source}: missing feature column(s) {', '.join(repr(m) for m in missing)}")
    reader = pq.ParquetFile(
        source,
        read_dictionary=[f.name for f in _categorical(preprocessor)],
        buffer_size=_READ_BUFFER if budget.limited else 0,
        pre_buffer=not budget.limited,  # pre-buffering reads every row group's column chunks up front
    )
    schema = pa.schema([(name, pa.float32()) for name in preprocessor.output_columns])
    batches = reader.iter_batches(
        batch_size=batch_rows(preprocessor, budget), columns=[f.name for f in preprocessor.features]
    )
    rows = 0
    with (
        atomic_output(str(destination)) as staged,
        pq.ParquetWriter(staged, schema, **WRITER_OPTIONS) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubeforge-parquet-writer") as writing,
    ):
        pending: Future[None] | None = None  # one batch is written while the next is read and transformed
        for batch in batches:
            transformed = pa.record_batch(transform_batch(preprocessor, batch, str(source)), schema=schema)
            if pending is not None:
                pending.result()
            pending = writing.submit(writer.write_batch, transformed)
            rows += batch.num_rows
        if pending is not None:
            pending.result()
    budget.release()
    return rows


def transform_batch(preprocessor: FittedPreprocessor, batch: pa.RecordBatch, source: str) -> list[pa.Array]:
    """The output columns (float32 Arrow arrays, in `output_columns` order) of one batch of raw rows."""
    columns: list[pa.Array] = []
    for feature in preprocessor.features:
        column = batch.column(feature.name)
        if isinstance(feature, NumericFeature):
            columns.append(pa.array(_scaled(feature, column, source)))
            continue
        codes = _category_codes(feature, column, source)
        if feature.encoding == "ordinal":
            columns.append(pa.array(codes.astype(np.float32)))
        else:
            columns += [pa.array((codes == code).astype(np.float32)) for code in range(len(feature.categories))]
    return columns


def _scaled(feature: NumericFeature, column: pa.Array, source: str) -> np.ndarray:
    """Impute, clip and standardize in float64 (as `FittedPreprocessor.transform`), then float32."""
    try:
        numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowException as exc:
        raise InputError(f"{source}: column '{feature.name}' is numeric but holds {column.type} values") from exc
    numbers = np.where(np.isnan(numbers), feature.impute, numbers)
    numbers = np.clip(numbers, feature.clip_low, feature.clip_high)
    scaled: np.ndarray = ((numbers - feature.mean) / feature.std).astype(np.float32)
    return scaled


def _category_codes(feature: CategoricalFeature, column: pa.Array, source: str) -> np.ndarray:
    """Each row's index in `feature.categories`, missing values imputed, unknown categories resolved by the policy."""
    if not isinstance(column, pa.DictionaryArray):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    known = pa.array(feature.categories, pa.string())
    imputed = feature.categories.index(feature.impute) if feature.impute in feature.categories else -1
    # code per distinct value, then one more entry (index -1) for a missing value: the imputed category
    mapped = np.append(
        pc.fill_null(pc.index_in(dictionary, value_set=known), -1).to_numpy(zero_copy_only=False), imputed
    )
    mapped[:-1][dictionary.is_null().to_numpy(zero_copy_only=False)] = imputed
    indices = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False)
    codes: np.ndarray = mapped[indices]

    def value_of(row: int) -> object:
        return dictionary[int(indices[row])].as_py() if indices[row] >= 0 else None

    return resolve_unknown(codes, feature.policy, feature.categories, feature.name, source, value_of)


def _categorical(preprocessor: FittedPreprocessor) -> list[CategoricalFeature]:
    return [f for f in preprocessor.features if isinstance(f, CategoricalFeature)]


__all__ = ["BATCH_ROWS", "WRITER_OPTIONS", "batch_rows", "transform_batch", "transform_parquet"]
