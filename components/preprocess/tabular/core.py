"""Tabular preprocessing: schema check, stratified split, and a preprocessor fitted on train.

The splits are written as raw, schema-checked rows; the fitted preprocessor (imputation,
clipping, scaling, encoding; statistics from the training split only) is written as its own
versioned artifact. Training, evaluation and serving apply that same artifact.

Three backends compute the same splits, the same fitted preprocessor and the same statistics:
``pandas`` (in memory, the reference), ``duckdb`` (Arrow-native, streams Parquet with bounded
memory: the default) and ``spark`` (pyspark, for data that outgrows one machine). The input may be
a local file, an ``s3://`` or ``gs://`` object, or a PostgreSQL query (see `kubeforge.ingest`).
Class-imbalance options (resampling the training split, balanced class weights) are in `imbalance`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from kubeforge.artifacts import atomic_output
from kubeforge.errors import InputError
from kubeforge.ingest import local_table
from kubeforge.preprocess_engine.split_assign import split_codes, split_keys
from kubeforge.preprocess_engine.summary import summarize_frames
from kubeforge.preprocessor import TASKS, FittedPreprocessor, PreprocessOptions, Task, fit_preprocessor
from kubeforge.tabular import (
    TableSchema,
    coerce_to_schema,
    infer_schema,
    numeric_column,
    parse_declared_schema,
    read_table,
)

from .imbalance import NO_BALANCE, ClassBalance
from .options import (
    ENGINES,
    SPLITS,
    Engine,
    PreprocessOutputs,
    PreprocessResult,
    SplitFractions,
    class_size_problem,
)
from .statistics import describe_splits
from .task_choice import TaskChoice, choose_task

_OUTPUT_FIELDS = ("train", "validation", "test", "preprocessor", "statistics")


def preprocess(
    input_path: str | Path,
    outputs: PreprocessOutputs,
    label: str,
    task: str = "",
    schema_json: str = "",
    options: PreprocessOptions | None = None,
    fractions: SplitFractions | None = None,
    seed: int = 42,
    engine: Engine = "pandas",
    memory_limit_mb: int = 0,
    query: str = "",
    balance: ClassBalance = NO_BALANCE,
) -> PreprocessResult:
    """Check, split and fit with the chosen backend; writes every output or, on any error, none of them.

    `input_path` is a local path, an s3:// or gs:// URI, or a postgresql:// URI with `query` set.
    `memory_limit_mb` is the duckdb backend's whole memory budget on top of its imported libraries
    (DuckDB's share, Arrow batches, the fit, the Parquet writers: `preprocess_engine.budget`; 0: no
    budget, DuckDB's default limit); the other backends ignore it.
    `balance` resamples the training split and/or stores class weights (classification only).
    `task` empty: inferred from the label column (`task_choice`); the statistics report says why.
    """
    if task not in ("", *TASKS):
        raise InputError(f"task is {task!r}; valid values are {', '.join(TASKS)}, or empty to infer it from the label")
    if engine not in ENGINES:
        raise InputError(f"engine is {engine!r}; valid values are {', '.join(ENGINES)}")
    options = options or PreprocessOptions()
    fractions = fractions or SplitFractions()
    with local_table(str(input_path), query) as path:
        choice = choose_task(path, label, task, str(input_path))
        task = choice.task
        balance.check_task(choice.task)
        if engine == "duckdb":
            from .engine_duckdb import preprocess_duckdb

            return preprocess_duckdb(
                path,
                outputs,
                label,
                task,
                schema_json,
                options,
                fractions,
                seed,
                memory_limit_mb,
                str(input_path),
                balance=balance,
                task_reason=choice.reason,
            )
        if engine == "spark":
            from .engine_spark import preprocess_spark

            return preprocess_spark(
                path,
                outputs,
                label,
                choice.task,
                schema_json,
                options,
                fractions,
                seed,
                str(input_path),
                balance=balance,
                task_reason=choice.reason,
            )
        return _preprocess_pandas(
            path, outputs, label, choice, schema_json, options, fractions, seed, str(input_path), balance
        )


def _preprocess_pandas(
    path: Path,
    outputs: PreprocessOutputs,
    label: str,
    choice: TaskChoice,
    schema_json: str,
    options: PreprocessOptions,
    fractions: SplitFractions,
    seed: int,
    shown: str,
    balance: ClassBalance,
) -> PreprocessResult:
    source, task = f"input file {shown}", choice.task
    declared = parse_declared_schema(schema_json)
    text_columns = [name for name, kind in (declared or {}).items() if kind == "categorical"]
    frame = read_table(path, text_columns=text_columns)
    schema = TableSchema(features=declared, label=label) if declared else infer_schema(frame, label, source)
    typed = coerce_to_schema(frame, schema, source=source)
    _check_labels(typed[label], label, task, source)
    train, validation, test = split_rows(typed, label, task, fractions, seed)
    sampling = balance.plan(train[label].value_counts(sort=False).tolist(), seed)
    if sampling is not None:
        train = sampling.resample_frame(train, label)
    preprocessor = balance.weigh(fit_preprocessor(train, schema, task, options), [train[label]], "training split")
    splits = {"train": train, "validation": validation, "test": test}
    report = describe_splits(
        summarize_frames(splits, preprocessor),
        preprocessor,
        source=shown,
        schema_inferred=declared is None,
        task_reason=choice.reason,
    )
    with staged_outputs(outputs) as staged:
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

    The rule is `kubeforge.preprocess_engine.split_assign`'s, which the duckdb and spark backends share.
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
        sizes = ", ".join(f"{name} {len(part)}" for name, part in zip(SPLITS, parts, strict=True))
        raise InputError(
            f"cannot split {len(frame)} rows with the requested fractions ({sizes} rows); "
            "every split needs rows: add data or raise the fractions"
        )
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


@contextlib.contextmanager
def staged_outputs(outputs: PreprocessOutputs) -> Iterator[dict[str, Path]]:
    """Yield a staged local path per output (keyed by `PreprocessOutputs` field); all are published
    only if the block succeeds, none otherwise."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(atomic_output(getattr(outputs, name))) for name in _OUTPUT_FIELDS}


def write_fitted(staged: dict[str, Path], preprocessor: FittedPreprocessor, report: str) -> None:
    """Write the preprocessor JSON and the statistics report into their staged paths."""
    staged["preprocessor"].write_text(json.dumps(preprocessor.to_json(), indent=2, allow_nan=False))
    staged["statistics"].write_text(report)


__all__ = [
    "SPLITS",
    "PreprocessOutputs",
    "PreprocessResult",
    "SplitFractions",
    "preprocess",
    "split_rows",
    "staged_outputs",
    "write_fitted",
]
