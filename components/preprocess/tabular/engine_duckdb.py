"""The duckdb backend: Arrow-native, streaming Parquet row groups under a memory limit.

Passes over the data, none of which holds the table in memory: typed checks; class counts; split
thresholds (a window over two narrow columns, which DuckDB spills to disk when it must); one
streaming COPY per split straight from the source into the staged Parquet output; then the fit on
the written training split (exact quantiles column batch by column batch, sized to the memory
limit, then one streaming pass for mean and standard deviation) and the report's statistics.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb

from kubeforge.errors import InputError
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
from kubeforge.preprocess_engine.fitting import (
    NumericBounds,
    categorical_feature,
    class_list,
    numeric_bounds,
    numeric_feature,
)
from kubeforge.preprocess_engine.split_assign import held_out_counts, split_code_sql, split_key_sql
from kubeforge.preprocess_engine.summary import ColumnSummary, SplitStatistics, label_text, top_categories
from kubeforge.preprocessor import FittedPreprocessor, NumericFeature, PreprocessOptions, Task
from kubeforge.tabular import TableSchema, parse_declared_schema

from .options import SPLITS, PreprocessOutputs, PreprocessResult, SplitFractions, class_size_problem

_BYTES_PER_QUANTILE_VALUE = 32  # a buffered DOUBLE plus DuckDB's sort overhead


def connect(memory_limit_mb: int, scratch: Path) -> duckdb.DuckDBPyConnection:
    """A private DuckDB connection that spills to `scratch` and keeps row order on COPY."""
    connection = duckdb.connect(config={"preserve_insertion_order": True, "temp_directory": str(scratch)})
    if memory_limit_mb > 0:
        connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
    return connection


def preprocess_duckdb(
    path: Path,
    outputs: PreprocessOutputs,
    label: str,
    task: Task,
    schema_json: str,
    options: PreprocessOptions,
    fractions: SplitFractions,
    seed: int,
    memory_limit_mb: int,
    shown: str,
) -> PreprocessResult:
    """Check, split and fit with DuckDB; writes every output or none (see `core.preprocess`)."""
    from .core import staged_outputs, write_fitted
    from .statistics import describe_splits

    declared = parse_declared_schema(schema_json)
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
            class_rows = _check_labels(connection, source, label, task)
            split_code = _split_code(connection, source, label, task, fractions, seed, class_rows)
            selected = ", ".join(typed_columns(source, schema))
            with staged_outputs(outputs) as staged:
                for code, name in enumerate(SPLITS):
                    connection.execute(
                        f"COPY (SELECT {selected} FROM {source.relation} WHERE {split_code} = {code}) "
                        f"TO {literal(str(staged[name]))} (FORMAT parquet)"
                    )
                splits = {name: f"read_parquet({literal(str(staged[name]))})" for name in SPLITS}
                preprocessor = fit_on(connection, splits["train"], schema, task, options, memory_limit_mb)
                statistics = summarize(connection, splits, preprocessor)
                write_fitted(
                    staged,
                    preprocessor,
                    describe_splits(statistics, preprocessor, source=shown, schema_inferred=declared is None),
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
    if task == "classification":
        problem = class_size_problem(class_rows, label, fractions)
        if problem is not None:
            raise problem
    totals = [0, 0, 0]
    for rows in class_rows.values():
        validation, test = held_out_counts(rows, fractions.validation, fractions.test)
        totals = [totals[0] + rows - validation - test, totals[1] + validation, totals[2] + test]
    if 0 in totals:
        sizes = ", ".join(f"{name} {count}" for name, count in zip(SPLITS, totals, strict=True))
        raise InputError(
            f"cannot split {sum(class_rows.values())} rows with the requested fractions ({sizes} rows); "
            "every split needs rows: add data or raise the fractions"
        )
    key = split_key_sql(ROW, seed, "duckdb")
    group = f"CAST({quote(label)} AS VARCHAR)" if task == "classification" else "''"
    code = split_code_sql("rank", "rows", fractions.validation, fractions.test)
    thresholds = connection.sql(
        f"SELECT grp, coalesce(max(key) FILTER (WHERE code = 2), -1), coalesce(max(key) FILTER (WHERE code >= 1), -1) "
        f"FROM (SELECT grp, key, {code} AS code FROM (SELECT grp, key, "
        f"row_number() OVER (PARTITION BY grp ORDER BY key) - 1 AS rank, count(*) OVER (PARTITION BY grp) AS rows "
        f"FROM (SELECT {group} AS grp, {key} AS key FROM {source.relation}))) GROUP BY grp"
    ).fetchall()
    test_max = " ".join(f"WHEN {literal(grp)} THEN {test}" for grp, test, _ in thresholds)
    held_max = " ".join(f"WHEN {literal(grp)} THEN {held}" for grp, _, held in thresholds)
    return (
        f"(CASE WHEN {key} <= (CASE {group} {test_max} END) THEN 2 "
        f"WHEN {key} <= (CASE {group} {held_max} END) THEN 1 ELSE 0 END)"
    )


def fit_on(
    connection: duckdb.DuckDBPyConnection,
    train: str,
    schema: TableSchema,
    task: Task,
    options: PreprocessOptions,
    memory_limit_mb: int,
) -> FittedPreprocessor:
    """Fit the preprocessor on the training split `train` (an SQL relation of typed columns)."""
    rows = connection.sql(f"SELECT count(*) FROM {train}").fetchall()[0][0]
    numeric = [name for name, kind in schema.features.items() if kind == "numeric"]
    bounds = _numeric_bounds(connection, train, numeric, options, _quantile_batch(rows, memory_limit_mb))
    moments = _clipped_moments(connection, train, bounds)
    features: list[Any] = []
    for name, kind in schema.features.items():
        if kind == "numeric":
            features.append(numeric_feature(name, bounds[name], *moments[name]))
        else:
            counts = dict(
                connection.sql(
                    f"SELECT {quote(name)}, count(*) FROM {train} WHERE {quote(name)} IS NOT NULL GROUP BY ALL"
                ).fetchall()
            )
            features.append(categorical_feature(name, counts, options.encoding))
    classes = None
    if task == "classification":
        classes = class_list(
            v for (v,) in connection.sql(f"SELECT DISTINCT {quote(schema.label)} FROM {train}").fetchall()
        )
    return FittedPreprocessor(task=task, label=schema.label, features=features, classes=classes, fitted_on_rows=rows)


def _quantile_batch(rows: int, memory_limit_mb: int) -> int:
    """How many columns' exact quantiles to compute in one query under the memory limit."""
    if memory_limit_mb <= 0:
        return 1_000_000
    budget = memory_limit_mb * 1024 * 1024 // 2
    return max(1, budget // max(1, rows * _BYTES_PER_QUANTILE_VALUE))


def _numeric_bounds(
    connection: duckdb.DuckDBPyConnection, train: str, columns: list[str], options: PreprocessOptions, batch: int
) -> dict[str, NumericBounds]:
    bounds: dict[str, NumericBounds] = {}
    for start in range(0, len(columns), batch):
        chunk = columns[start : start + batch]
        items = []
        for name in chunk:
            column = quote(name)
            impute = f"median({column})" if options.numeric_impute == "median" else f"avg({column})"
            if options.clip_quantiles is None:
                clip = f"[min({column}), max({column})]"
            else:
                low, high = options.clip_quantiles
                clip = f"quantile_cont({column}, [{low!r}, {high!r}])"
            items.append(f"count({column}), {impute}, {clip}")
        values = connection.sql(f"SELECT {', '.join(items)} FROM {train}").fetchall()[0]
        for index, name in enumerate(chunk):
            count, impute_value, clip = values[3 * index : 3 * index + 3]
            low_value, high_value = clip if clip is not None else (None, None)
            bounds[name] = numeric_bounds(name, count, impute_value, low_value, high_value)
    return bounds


def _clipped_moments(
    connection: duckdb.DuckDBPyConnection, train: str, bounds: dict[str, NumericBounds]
) -> dict[str, tuple[float, float]]:
    if not bounds:
        return {}
    items = []
    for name, bound in bounds.items():
        clipped = f"least(greatest(coalesce({quote(name)}, {bound.impute!r}), {bound.clip_low!r}), {bound.clip_high!r})"
        items.append(f"avg({clipped}), stddev_pop({clipped})")
    values = connection.sql(f"SELECT {', '.join(items)} FROM {train}").fetchall()[0]
    return {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(bounds)}


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
    columns = []
    for feature in preprocessor.features:
        column = quote(feature.name)
        missing = connection.sql(
            f"SELECT avg(CASE WHEN {column} IS NULL THEN 1.0 ELSE 0.0 END) FROM {train}"
        ).fetchall()[0][0]
        if isinstance(feature, NumericFeature):
            mean, std, low, high = connection.sql(
                f"SELECT avg({column}), stddev_samp({column}), min({column}), max({column}) FROM {train}"
            ).fetchall()[0]
            columns.append(
                ColumnSummary(
                    feature.name, "numeric", float(missing), _number(mean), _number(std), _number(low), _number(high)
                )
            )
        else:
            counts = dict(
                connection.sql(
                    f"SELECT {column}, count(*) FROM {train} WHERE {column} IS NOT NULL GROUP BY ALL"
                ).fetchall()
            )
            columns.append(
                ColumnSummary(
                    feature.name, "categorical", float(missing), distinct=len(counts), top=top_categories(counts)
                )
            )
    return SplitStatistics(rows=rows, label_counts=label_counts, columns=columns)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


__all__ = ["connect", "fit_on", "preprocess_duckdb", "summarize"]
