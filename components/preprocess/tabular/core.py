"""Tabular preprocessing: schema check, stratified split, and a preprocessor fitted on train.

The splits are written as raw, schema-checked rows; the fitted preprocessor (imputation,
clipping, scaling, encoding; statistics from the training split only) is written as its own
versioned artifact. Training, evaluation and serving apply that same artifact.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from kubeforge.artifacts import atomic_output
from kubeforge.errors import InputError
from kubeforge.preprocessor import TASKS, FittedPreprocessor, PreprocessOptions, Task, fit_preprocessor
from kubeforge.tabular import (
    TableSchema,
    coerce_to_schema,
    infer_schema,
    numeric_column,
    parse_declared_schema,
    read_table,
)

from .statistics import describe_splits

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of rows held out for validation and test; the rest is the training split."""

    validation: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        for name, value in (("validation_fraction", self.validation), ("test_fraction", self.test)):
            if not 0.0 < value < 1.0:
                raise InputError(f"{name} is {value}; it must be between 0 and 1 (exclusive)")
        if self.validation + self.test >= 0.9:
            raise InputError(
                f"validation_fraction + test_fraction is {self.validation + self.test:.2f}; "
                "keep it below 0.9 so the training split has rows"
            )


@dataclass(frozen=True)
class PreprocessOutputs:
    """Where the component's outputs go (local paths or storage URIs)."""

    train: str
    validation: str
    test: str
    preprocessor: str
    statistics: str


@dataclass(frozen=True)
class PreprocessResult:
    """What preprocessing produced: row counts, the schema used and the fitted preprocessor."""

    rows: dict[str, int]
    schema: TableSchema
    preprocessor: FittedPreprocessor
    schema_inferred: bool


def preprocess(
    input_path: str | Path,
    outputs: PreprocessOutputs,
    label: str,
    task: Task = "classification",
    schema_json: str = "",
    options: PreprocessOptions | None = None,
    fractions: SplitFractions | None = None,
    seed: int = 42,
) -> PreprocessResult:
    """Check, split and fit; writes every output or, on any error, none of them."""
    if task not in TASKS:
        raise InputError(f"task is {task!r}; valid values are {', '.join(TASKS)}")
    options = options or PreprocessOptions()
    fractions = fractions or SplitFractions()
    source = f"input file {input_path}"
    declared = parse_declared_schema(schema_json)
    text_columns = [name for name, kind in (declared or {}).items() if kind == "categorical"]
    frame = read_table(input_path, text_columns=text_columns)
    schema = TableSchema(features=declared, label=label) if declared else infer_schema(frame, label, source)
    typed = coerce_to_schema(frame, schema, source=source)
    _check_labels(typed[label], label, task, source)
    train, validation, test = split_rows(typed, label, task, fractions, seed)
    preprocessor = fit_preprocessor(train, schema, task, options)
    splits = {"train": train, "validation": validation, "test": test}
    report = describe_splits(splits, preprocessor, source=str(input_path), schema_inferred=declared is None)
    _write_all(outputs, splits, preprocessor, report)
    return PreprocessResult(
        rows={name: len(rows) for name, rows in splits.items()},
        schema=schema,
        preprocessor=preprocessor,
        schema_inferred=declared is None,
    )


def split_rows(
    frame: pd.DataFrame, label: str, task: Task, fractions: SplitFractions, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split into train/validation/test, stratified on the label for classification."""
    held_out = fractions.validation + fractions.test
    stratify = frame[label] if task == "classification" else None
    if stratify is not None:
        _check_class_sizes(stratify, label, fractions)
    try:
        train, rest = train_test_split(frame, test_size=held_out, random_state=seed, stratify=stratify)
        rest_stratify = rest[label] if task == "classification" else None
        validation, test = train_test_split(
            rest, test_size=fractions.test / held_out, random_state=seed, stratify=rest_stratify
        )
    except ValueError as exc:
        raise InputError(f"cannot split {len(frame)} rows with the requested fractions: {exc}") from exc
    return train, validation, test


def _check_labels(labels: pd.Series, label: str, task: Task, source: str) -> None:
    missing = labels.isna()
    if missing.any():
        rows = labels.index[missing][:5].tolist()
        raise InputError(
            f"{source}: label column '{label}' has {int(missing.sum())} missing value(s) (first rows {rows}); "
            "drop or fill those rows before preprocessing"
        )
    if task == "classification":
        classes = labels.unique()
        if len(classes) < 2:
            raise InputError(
                f"{source}: label column '{label}' has a single class {classes[0]!r}; "
                "classification needs at least two classes (or use task='regression')"
            )
    else:
        numeric_column(labels, label, source)


def _check_class_sizes(labels: pd.Series, label: str, fractions: SplitFractions) -> None:
    counts = labels.value_counts()
    needed = max(3, round(1 / min(fractions.validation, fractions.test)))
    rare = counts[counts < needed]
    if not rare.empty:
        listed = ", ".join(f"{value!r} ({count} rows)" for value, count in rare.items())
        raise InputError(
            f"label column '{label}': class(es) {listed} have too few rows for a stratified split "
            f"(need at least {needed} each); add data, merge rare classes, or raise the split fractions"
        )


def _write_all(
    outputs: PreprocessOutputs,
    splits: dict[str, pd.DataFrame],
    preprocessor: FittedPreprocessor,
    report: str,
) -> None:
    """Write all outputs through atomic handles: nothing is published unless everything was written."""
    with contextlib.ExitStack() as stack:
        for name, rows in splits.items():
            path = stack.enter_context(atomic_output(getattr(outputs, name)))
            rows.to_parquet(path, index=False)
        preprocessor_path = stack.enter_context(atomic_output(outputs.preprocessor))
        preprocessor_path.write_text(json.dumps(preprocessor.to_json(), indent=2, allow_nan=False))
        statistics_path = stack.enter_context(atomic_output(outputs.statistics))
        statistics_path.write_text(report)


__all__ = ["SPLITS", "PreprocessOutputs", "PreprocessResult", "SplitFractions", "preprocess", "split_rows"]
