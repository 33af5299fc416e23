"""Split statistics every backend computes: row counts, label counts and training-split column summaries.

The preprocessing report is rendered from a `SplitStatistics`, so pandas, DuckDB and Spark runs on
the same data print the same report, and tests compare the three directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kubeforge.preprocessor import FittedPreprocessor, NumericFeature

TOP_CATEGORIES = 3


@dataclass(frozen=True)
class ColumnSummary:
    """One feature column of the training split: missing share, then numeric or categorical statistics."""

    name: str
    kind: str
    missing_share: float
    mean: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    distinct: int | None = None
    top: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SplitStatistics:
    """Rows per split, label counts per split (classification) and training-split column summaries."""

    rows: dict[str, int]
    label_counts: dict[str, dict[str, int]] | None
    columns: list[ColumnSummary]


def label_text(value: object) -> str:
    """How a class label is written in the report and keyed in `label_counts`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def top_categories(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """The most frequent categories, ties broken by the category text."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:TOP_CATEGORIES])


def summarize_frames(splits: dict[str, pd.DataFrame], preprocessor: FittedPreprocessor) -> SplitStatistics:
    """`SplitStatistics` of splits held as pandas frames (the pandas backend)."""
    train = splits["train"]
    label_counts = None
    if preprocessor.task == "classification":
        label_counts = {
            name: {label_text(k): int(v) for k, v in rows[preprocessor.label].value_counts().items()}
            for name, rows in splits.items()
        }
    columns: list[ColumnSummary] = []
    for feature in preprocessor.features:
        column = train[feature.name]
        missing = float(column.isna().mean())
        if isinstance(feature, NumericFeature):
            columns.append(
                ColumnSummary(
                    name=feature.name,
                    kind="numeric",
                    missing_share=missing,
                    mean=float(column.mean()),
                    std=float(column.std()),
                    minimum=float(column.min()),
                    maximum=float(column.max()),
                )
            )
        else:
            counts = {str(k): int(v) for k, v in column.value_counts().items()}
            columns.append(
                ColumnSummary(
                    name=feature.name,
                    kind="categorical",
                    missing_share=missing,
                    distinct=len(counts),
                    top=top_categories(counts),
                )
            )
    return SplitStatistics(
        rows={name: len(rows) for name, rows in splits.items()}, label_counts=label_counts, columns=columns
    )


__all__ = ["TOP_CATEGORIES", "ColumnSummary", "SplitStatistics", "label_text", "summarize_frames", "top_categories"]
