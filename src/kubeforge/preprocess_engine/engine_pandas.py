"""The pandas engine: the whole table in memory; the reference the duckdb and spark engines match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.options import (
    PreprocessResult,
    SplitFractions,
    class_size_problem,
    empty_split_error,
    staged_outputs,
    write_fitted,
)
from kubeforge.preprocess_engine.report import describe_splits
from kubeforge.preprocess_engine.request import PreprocessRequest
from kubeforge.preprocess_engine.split_assign import split_codes, split_keys
from kubeforge.preprocess_engine.summary import summarize_frames
from kubeforge.preprocess_engine.task_choice import TaskChoice
from kubeforge.preprocessor import Task, fit_preprocessor
from kubeforge.tabular import (
    TableSchema,
    coerce_to_schema,
    infer_schema,
    numeric_column,
    parse_declared_schema,
    read_table,
)


def preprocess_pandas(request: PreprocessRequest, table: Path, task: TaskChoice) -> PreprocessResult:
    """Check, split and fit in memory with pandas; writes every output or none."""
    shown, label, balance = request.source, request.label, request.balance
    source = f"input file {shown}"
    declared = parse_declared_schema(request.schema_json)
    text_columns = [name for name, kind in (declared or {}).items() if kind == "categorical"]
    frame = read_table(table, text_columns=text_columns)
    schema = TableSchema(features=declared, label=label) if declared else infer_schema(frame, label, source)
    typed = coerce_to_schema(frame, schema, source=source)
    _check_labels(typed[label], label, task.task, source)
    train, validation, test = split_rows(typed, label, task.task, request.fractions, request.seed)
    sampling = balance.plan(train[label].value_counts(sort=False).tolist(), request.seed)
    if sampling is not None:
        train = sampling.resample_frame(train, label)
    fitted = fit_preprocessor(train, schema, task.task, request.options)
    preprocessor = balance.weigh(fitted, [train[label]], "training split")
    splits = {"train": train, "validation": validation, "test": test}
    report = describe_splits(
        summarize_frames(splits, preprocessor),
        preprocessor,
        source=shown,
        schema_inferred=declared is None,
        task_reason=task.reason,
    )
    with staged_outputs(request.outputs) as staged:
        for name, rows in splits.items():
            rows.to_parquet(staged[name], index=False)
        write_fitted(staged, preprocessor, report)
    return PreprocessResult(
        rows={name: len(rows) for name, rows in splits.items()},
        schema=schema,
        preprocessor=preprocessor,
        schema_inferred=declared is None,
    )


def split_rows(
    frame: pd.DataFrame, label: str, task: Task, fractions: SplitFractions, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split into train/validation/test (stratified on the label for classification), keeping row order.

    The rule is `kubeforge.preprocess_engine.split_assign`'s, which the duckdb and spark engines share.
    """
    if task == "classification":
        problem = class_size_problem(frame[label].value_counts().to_dict(), label, fractions)
        if problem is not None:
            raise problem
        groups, _ = pd.factorize(frame[label])
    else:
        groups = np.zeros(len(frame), dtype=np.intp)
    keys = split_keys(np.arange(len(frame)), seed)
    order = np.lexsort((keys, groups))
    class_rows = np.bincount(groups)[groups]
    first_of_group = np.searchsorted(groups[order], groups[order], side="left")
    ranks = np.empty(len(frame), dtype=np.int64)
    ranks[order] = np.arange(len(frame)) - first_of_group
    codes = split_codes(ranks, class_rows, fractions.validation, fractions.test)
    parts = tuple(frame[codes == code] for code in (0, 1, 2))
    if any(part.empty for part in parts):
        raise empty_split_error([len(part) for part in parts])
    return parts[0], parts[1], parts[2]


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


__all__ = ["preprocess_pandas", "split_rows"]
