"""Batch inference: raw rows in, predictions out, through the model's own preprocessor.

The input is a CSV or Parquet table with the model's feature columns (extra columns, such as
an id or the label, are allowed). Rows are scored in chunks so a large table never needs the
whole feature matrix in memory; the output file is published only once every chunk is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kubeforge.artifacts import atomic_output
from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, load_model
from kubeforge.tabular import read_table, require_columns

OUTPUT_FORMATS = ("parquet", "csv")
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


@dataclass(frozen=True)
class BatchOptions:
    """How to score and what to write.

    `keep_columns`: input columns copied next to the predictions (e.g. an id); `include_probabilities`
    adds one `probability_<class>` column per class for classifiers.
    """

    output_format: str = "parquet"
    keep_columns: tuple[str, ...] = ()
    include_probabilities: bool = True
    chunk_rows: int = 10_000


@dataclass(frozen=True)
class BatchResult:
    """What was written: row count, the model's task and the output columns.

    `unknown_categories` counts the rows per column whose category had no level of its own in
    training (scored through the reserved level or as zeros, per the column's policy).
    """

    rows: int
    task: str
    columns: list[str]
    unknown_categories: dict[str, int] = field(default_factory=dict)


def parse_keep_columns(text: str) -> tuple[str, ...]:
    """Turn `"id, region"` into `("id", "region")`; empty text keeps no input column."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def predict_table(
    data: str | Path, model_dir: str | Path, predictions_uri: str, options: BatchOptions | None = None
) -> BatchResult:
    """Score every row of `data` with the model at `model_dir`; write them to `predictions_uri` atomically."""
    options = options or BatchOptions()
    _check_options(options)
    frame = read_table(data)
    source = f"data {data}"
    if options.keep_columns:
        require_columns(frame, list(options.keep_columns), source)
    if frame.empty:
        raise InputError(f"{source}: the table has no rows; nothing to score")
    model = load_model(model_dir)
    scored = pd.concat(
        [
            _score_chunk(model, frame.iloc[start : start + options.chunk_rows], options, source)
            for start in range(0, len(frame), options.chunk_rows)
        ],
        ignore_index=True,
    )
    with atomic_output(predictions_uri) as staged:
        if options.output_format == "csv":
            scored.to_csv(staged, index=False)
        else:
            scored.to_parquet(staged, index=False)
    return BatchResult(
        rows=len(scored),
        task=model.task,
        columns=[str(c) for c in scored.columns],
        unknown_categories=model.preprocessor.unknown_category_rows(frame),
    )


def _check_options(options: BatchOptions) -> None:
    if options.output_format not in OUTPUT_FORMATS:
        raise InputError(f"output_format is {options.output_format!r}; valid formats: {', '.join(OUTPUT_FORMATS)}")
    if options.chunk_rows < 1:
        raise InputError(f"chunk_rows is {options.chunk_rows}; give a positive number of rows per chunk")
    clashes = [c for c in options.keep_columns if c == PREDICTION_COLUMN or c.startswith(PROBABILITY_PREFIX)]
    if clashes:
        raise InputError(f"keep_columns: {', '.join(clashes)} would clash with the prediction columns; rename them")


def _score_chunk(model: LoadedModel, chunk: pd.DataFrame, options: BatchOptions, source: str) -> pd.DataFrame:
    prediction = model.predict_frame(chunk, source=source)
    out = chunk[list(options.keep_columns)].reset_index(drop=True)
    out[PREDICTION_COLUMN] = prediction.labels
    if options.include_probabilities and prediction.probabilities is not None and model.classes is not None:
        probabilities = np.asarray(prediction.probabilities, dtype=np.float64)
        for index, label in enumerate(model.classes):
            out[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, index]
    return out


__all__ = [
    "OUTPUT_FORMATS",
    "PREDICTION_COLUMN",
    "PROBABILITY_PREFIX",
    "BatchOptions",
    "BatchResult",
    "parse_keep_columns",
    "predict_table",
]
