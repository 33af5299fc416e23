"""The duckdb backend: Arrow-native, streaming Parquet row groups under a memory limit.

Passes over the data, none of which holds the table in memory: typed checks; class counts; split
thresholds (two narrow streaming passes, `ranked_keys`: no sort of the rows); one streaming pass
from the source into the three staged Parquet outputs (`split_writer`); then the fit on the written
training split (numpy, one numeric column at a time per thread; DuckDB category counts) and the
report's statistics (one aggregate pass over the training split, plus category counts).

`memory_limit_mb` is the whole engine's budget (`kubeforge.preprocess_engine.budget`): DuckDB gets
a share of it, the Arrow batches of the split pass and the numeric fit are sized from it, and the
memory a phase freed is handed back to the system before the next one starts.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.budget import MemoryBudget
from kubeforge.preprocess_engine.duckdb_source import (
    ROW,
    Source,
    check_numeric,
    first_line,
    infer_kinds,
    literal,
    open_source,
    quote,
    require,
    typed_columns,
)
from kubeforge.preprocess_engine.fitting import class_list, fit_numeric_column
from kubeforge.preprocess_engine.imbalance import train_class_rows
from kubeforge.preprocess_engine.options import (
    SPLITS,
    PreprocessResult,
    SplitFractions,
    check_splittable,
    staged_outputs,
    write_fitted,
)
from kubeforge.preprocess_engine.ranked_keys import keys_at_ranks
from kubeforge.preprocess_engine.report import describe_splits
from kubeforge.preprocess_engine.request import PreprocessRequest
from kubeforge.preprocess_engine.split_assign import held_out_counts, split_key_sql
from kubeforge.preprocess_engine.split_writer import batch_rows, write_splits
from kubeforge.preprocess_engine.summary import ColumnSummary, SplitStatistics, label_text, top_categories
from kubeforge.preprocess_engine.task_choice import TaskChoice
from kubeforge.preprocessor import (
    FittedPreprocessor,
    NumericFeature,
    PreprocessOptions,
    Task,
    fit_categorical,
    target_scaler,
)
from kubeforge.tabular import TableSchema, parse_declared_schema

_SPLIT = "__split"  # the split code column of the one pass that writes the splits


def connect(memory_limit_mb: int, scratch: Path) -> duckdb.DuckDBPyConnection:
    """A private DuckDB connection that spills to `scratch` and keeps row order on COPY.

    Under a budget (`memory_limit_mb` > 0) DuckDB gets its share of it (`MemoryBudget.configure`).
    """
    connection = duckdb.connect(config={"preserve_insertion_order": True, "temp_directory": str(scratch)})
    MemoryBudget(memory_limit_mb).configure(connection)
    return connection


def preprocess_duckdb(request: PreprocessRequest, table: Path, task: TaskChoice) -> PreprocessResult:
    """Check, split and fit with DuckDB, streaming under `request.memory_limit_mb`; writes every output or none."""
    path, shown, label, seed = table, request.source, request.label, request.seed
    fractions, balance, memory_limit_mb = request.fractions, request.balance, request.memory_limit_mb
    declared = parse_declared_schema(request.schema_json)
    budget = MemoryBudget(memory_limit_mb)
    text_columns = [name for name, kind in (declared or {}).items() if kind == "categorical"]
    with tempfile.TemporaryDirectory(prefix="kubeforge-duckdb-") as scratch:
        connection = connect(memory_limit_mb, Path(scratch))
        try:
            source = open_source(connection, path, shown, Path(scratch), text_columns)
            schema = TableSchema(features=declared or infer_kinds(connection, source, label), label=label)
            require(source, [*schema.features, label])
            for name, kind in schema.features.items():
                if kind == "numeric":
                    check_numeric(connection, source, name)
            class_rows = _check_labels(connection, source, label, task.task)
            split_code = _split_code(connection, source, label, task.task, fractions, seed, class_rows)
            selected = ", ".join(typed_columns(source, schema))
            sampling = balance.plan(train_class_rows(class_rows, fractions), seed)
            with staged_outputs(request.outputs) as staged:
                streamed = {code: staged[name] for code, name in enumerate(SPLITS)}
                if sampling is not None:  # the resampled training split takes its own query
                    where = f"FROM {source.relation} WHERE {split_code} = 0"
                    rows = sampling.duckdb_query(connection, f"(SELECT {ROW}, {selected} {where})", ROW, quote(label))
                    connection.execute(f"COPY ({rows}) TO {literal(str(staged['train']))} (FORMAT parquet)")
                    del streamed[0]
                query = f"SELECT {selected}, {split_code} AS {_SPLIT} FROM {source.relation}"
                write_splits(connection, query, _SPLIT, streamed, batch_rows(budget, len(schema.features) + 1))
                budget.release()
                splits = {name: f"read_parquet({literal(str(staged[name]))})" for name in SPLITS}
                fitted = fit_on(connection, staged["train"], schema, task.task, request.options, budget=budget)
                budget.release()
                preprocessor = balance.weigh_file(fitted, staged["train"])
                statistics = summarize(connection, splits, preprocessor)
                write_fitted(
                    staged,
                    preprocessor,
                    describe_splits(
                        statistics,
                        preprocessor,
                        source=shown,
                        schema_inferred=declared is None,
                        task_reason=task.reason,
                    ),
                )
        except duckdb.Error as exc:
            raise InputError(f"input file {shown} cannot be processed: {first_line(exc)}") from exc
        finally:
            connection.close()
    return PreprocessResult(
        rows=statistics.rows, schema=schema, preprocessor=preprocessor, schema_inferred=declared is None
    )


def _check_labels(connection: duckdb.DuckDBPyConnection, source: Source, label: str, task: Task) -> dict[Any, int]:
    """The labels' checks (as the pandas backend words them); returns rows per class (one group for regression)."""
    name = quote(label)
    missing_when = f"{name} IS NULL" + (f" OR isnan(CAST({name} AS DOUBLE))" if source.is_numeric(label) else "")
    missing = connection.sql(
        f"SELECT count(*), list({ROW} ORDER BY {ROW})[1:5] FROM {source.relation} WHERE {missing_when}"
    ).fetchall()[0]
    if missing[0]:
        raise InputError(
            f"input file {source.shown}: label column '{label}' has {missing[0]} missing value(s) "
            f"(first rows {missing[1]}); drop or fill those rows before preprocessing"
        )
    if task == "regression":
        check_numeric(connection, source, label)
        return {None: connection.sql(f"SELECT count(*) FROM {source.relation}").fetchall()[0][0]}
    counts = dict(connection.sql(f"SELECT {name}, count(*) FROM {source.relation} GROUP BY ALL").fetchall())
    if len(counts) < 2:
        raise InputError(
            f"input file {source.shown}: label column '{label}' has a single class {next(iter(counts))!r}; "
            "classification needs at least two classes (or use task='regression')"
        )
    return counts


def _split_code(
    connection: duckdb.DuckDBPyConnection,
    source: Source,
    label: str,
    task: Task,
    fractions: SplitFractions,
    seed: int,
    class_rows: dict[Any, int],
) -> str:
    """An SQL expression giving each source row its split code (0 train, 1 validation, 2 test)."""
    check_splittable(class_rows, label, task, fractions)
    key = split_key_sql(ROW, seed, "duckdb")
    group = f"CAST({quote(label)} AS VARCHAR)" if task == "classification" else "''"

    def last_ranks(rows: int) -> tuple[int, int]:  # the last rank of test, then of test + validation
        validation, test = held_out_counts(rows, fractions.validation, fractions.test)
        return test - 1, test + validation - 1

    keyed = f"(SELECT {group} AS grp, {key} AS key FROM {source.relation})"
    thresholds = keys_at_ranks(connection, keyed, last_ranks)
    test_max = " ".join(f"WHEN {literal(grp)} THEN {test}" for grp, (test, _) in thresholds.items())
    held_max = " ".join(f"WHEN {literal(grp)} THEN {held}" for grp, (_, held) in thresholds.items())
    return (
        f"(CASE WHEN {key} <= (CASE {group} {test_max} END) THEN 2 "
        f"WHEN {key} <= (CASE {group} {held_max} END) THEN 1 ELSE 0 END)"
    )


def fit_on(
    connection: duckdb.DuckDBPyConnection,
    train: Path,
    schema: TableSchema,
    task: Task,
    options: PreprocessOptions,
    budget: MemoryBudget | None = None,
) -> FittedPreprocessor:
    """Fit the preprocessor on the written training split `train` (Parquet of typed columns).

    Numeric columns are fitted with numpy (`fit_numeric_column`), two columns at a time without a
    budget (each holds one column of the split in memory), one at a time and streamed when the
    column does not fit under one; category and class counts are DuckDB aggregates.
    """
    budget = budget or MemoryBudget()
    threads = 1 if budget.limited else 2
    relation = f"read_parquet({literal(str(train))})"
    numeric = [name for name, kind in schema.features.items() if kind == "numeric"]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kubeforge-fit") as pool:
        fitted = dict(
            zip(numeric, pool.map(lambda name: fit_numeric_column(train, name, options, budget), numeric), strict=True)
        )
    features: list[Any] = []
    for name, kind in schema.features.items():
        if kind == "numeric":
            features.append(fitted[name])
        else:
            counts = dict(
                connection.sql(
                    f"SELECT {quote(name)}, count(*) FROM {relation} WHERE {quote(name)} IS NOT NULL GROUP BY ALL"
                ).fetchall()
            )
            features.append(fit_categorical(name, counts, options))
    classes, scaler = None, None
    if task == "classification":
        classes = class_list(
            v for (v,) in connection.sql(f"SELECT DISTINCT {quote(schema.label)} FROM {relation}").fetchall()
        )
    else:
        target = f"CAST({quote(schema.label)} AS DOUBLE)"
        mean, std = connection.sql(f"SELECT avg({target}), stddev_pop({target}) FROM {relation}").fetchall()[0]
        scaler = target_scaler(mean, std, schema.label)
    return FittedPreprocessor(
        task=task,
        label=schema.label,
        features=features,
        classes=classes,
        fitted_on_rows=pq.ParquetFile(train).metadata.num_rows,
        target_scaler=scaler,
    )


def summarize(
    connection: duckdb.DuckDBPyConnection, splits: dict[str, str], preprocessor: FittedPreprocessor
) -> SplitStatistics:
    """`SplitStatistics` of the written splits (SQL relations keyed by split name)."""
    rows = {
        name: int(connection.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0])
        for name, relation in splits.items()
    }
    label_counts = None
    if preprocessor.task == "classification":
        label = quote(preprocessor.label)
        label_counts = {
            name: {
                label_text(k): int(v)
                for k, v in connection.sql(f"SELECT {label}, count(*) FROM {relation} GROUP BY ALL").fetchall()
            }
            for name, relation in splits.items()
        }
    train = splits["train"]
    items = ["count(*)"]
    for feature in preprocessor.features:
        column = quote(feature.name)
        items.append(f"count({column})")
        if isinstance(feature, NumericFeature):
            items.append(f"avg({column}), stddev_samp({column}), min({column}), max({column})")
    values = iter(connection.sql(f"SELECT {', '.join(items)} FROM {train}").fetchall()[0])
    train_rows = next(values)
    columns = []
    for feature in preprocessor.features:
        missing = (train_rows - next(values)) / train_rows if train_rows else float("nan")
        if isinstance(feature, NumericFeature):
            mean, std, low, high = (_number(next(values)) for _ in range(4))
            columns.append(ColumnSummary(feature.name, "numeric", missing, mean, std, low, high))
            continue
        column = quote(feature.name)
        counts = dict(
            connection.sql(f"SELECT {column}, count(*) FROM {train} WHERE {column} IS NOT NULL GROUP BY ALL").fetchall()
        )
        columns.append(
            ColumnSummary(feature.name, "categorical", missing, distinct=len(counts), top=top_categories(counts))
        )
    return SplitStatistics(rows=rows, label_counts=label_counts, columns=columns)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


__all__ = ["connect", "fit_on", "preprocess_duckdb", "summarize"]
