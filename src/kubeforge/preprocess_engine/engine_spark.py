"""The spark backend: the same checks, split and fit as the pandas and duckdb backends, on Apache Spark.

Runs on `local[*]` by default (or any master given by `KUBEFORGE_SPARK_MASTER`; on Kubernetes the
driver is a SparkApplication, see `spark_application`). Row numbers come from Parquet's own row
index (`_metadata.row_index`) plus per-file offsets, so every backend numbers rows alike; a CSV input
is first converted to Parquet. Splits are written by Spark in row order and merged, row group by row
group, into the single Parquet file each split output is; the report's statistics are computed on
those files with the shared DuckDB summary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from kubeforge import settings
from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.duckdb_source import csv_to_parquet, first_line, literal
from kubeforge.preprocess_engine.engine_duckdb import summarize
from kubeforge.preprocess_engine.fitting import class_list, numeric_bounds, numeric_feature
from kubeforge.preprocess_engine.imbalance import train_class_rows
from kubeforge.preprocess_engine.options import (
    SPLITS,
    PreprocessResult,
    SplitFractions,
    check_splittable,
    staged_outputs,
    write_fitted,
)
from kubeforge.preprocess_engine.report import describe_splits
from kubeforge.preprocess_engine.request import PreprocessRequest
from kubeforge.preprocess_engine.split_assign import split_code_sql, split_key_sql
from kubeforge.preprocess_engine.task_choice import TaskChoice
from kubeforge.preprocessor import FittedPreprocessor, PreprocessOptions, Task, fit_categorical, target_scaler
from kubeforge.tabular import FeatureKind, TableSchema, parse_declared_schema

ROW = "__row"
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


def spark_session() -> Any:
    """The Spark session: `KUBEFORGE_SPARK_MASTER` or local[*], quiet, with few shuffle partitions."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise InputError("engine 'spark' needs pyspark: pip install 'kubeforge[spark]' (and Java 17)") from exc
    return (
        SparkSession.builder.master(settings.SPARK_MASTER.read())
        .appName("kubeforge-preprocess")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", settings.SPARK_SHUFFLE_PARTITIONS.read())
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def preprocess_spark(request: PreprocessRequest, table: Path, task: TaskChoice) -> PreprocessResult:
    """Check, split and fit with Spark; writes every output or none."""
    path, shown, label, seed = table, request.source, request.label, request.seed
    fractions, balance = request.fractions, request.balance
    import duckdb
    from pyspark.errors import PySparkException

    declared = parse_declared_schema(request.schema_json)
    spark = spark_session()
    with tempfile.TemporaryDirectory(prefix="kubeforge-spark-") as scratch:
        try:
            frame = _read(
                spark, path, shown, Path(scratch), [n for n, k in (declared or {}).items() if k == "categorical"]
            )
            types = {name: kind for name, kind in frame.dtypes if name != ROW}
            schema = TableSchema(features=declared or _infer(types, label, shown), label=label)
            missing = [c for c in [*schema.features, label] if c not in types]
            if missing:
                raise InputError(
                    f"input file {shown}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                    f"columns present: {listed(types)}"
                )
            frame.createOrReplaceTempView("source")
            for name, kind in schema.features.items():
                if kind == "numeric":
                    _check_numeric(spark, types, name, shown)
            class_rows = _check_labels(spark, types, label, task.task, shown)
            typed = spark.sql(f"SELECT {ROW}, {', '.join(_typed(types, schema))} FROM source")
            coded = _assign_splits(spark, typed, label, task.task, fractions, seed, class_rows)
            sampling = balance.plan(train_class_rows(class_rows, fractions), seed)
            with staged_outputs(request.outputs) as staged:
                for code, name in enumerate(SPLITS):
                    part_dir = Path(scratch) / name
                    rows = coded.where(f"__split = {code}")
                    if code == 0 and sampling is not None:
                        rows.createOrReplaceTempView("train_rows")
                        rows = spark.sql(sampling.resample_sql("train_rows", ROW, _q(label)))
                    rows.orderBy(ROW).drop(ROW, "__split").write.parquet(str(part_dir))
                    _merge_parts(part_dir, staged[name])
                train = spark.read.parquet(str(Path(scratch) / "train"))
                fitted = _fit(spark, train, schema, task.task, request.options)
                preprocessor = balance.weigh_file(fitted, staged["train"])
                with duckdb.connect() as connection:
                    statistics = summarize(
                        connection, {n: f"read_parquet({literal(str(staged[n]))})" for n in SPLITS}, preprocessor
                    )
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
        except PySparkException as exc:
            raise InputError(f"input file {shown} cannot be processed by Spark: {first_line(exc)}") from exc
    return PreprocessResult(
        rows=statistics.rows, schema=schema, preprocessor=preprocessor, schema_inferred=declared is None
    )


def _read(spark: Any, path: Path, shown: str, scratch: Path, text_columns: list[str]) -> Any:
    """The input with `__row`, the 0-based row number in file order across sorted Parquet files."""
    import duckdb

    if not path.exists():
        raise InputError(f"input file {shown} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"input file {shown} is empty; give a CSV with a header row or a Parquet file")
    if path.is_file() and path.suffix.lower() not in (".parquet", ".pq"):
        with duckdb.connect() as connection:
            path = csv_to_parquet(connection, path, shown, scratch, text_columns)
    files = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else [str(path)]
    offsets, total = {}, 0
    for file in files:
        offsets[Path(file).resolve().as_uri()] = total
        total += pq.ParquetFile(file).metadata.num_rows
    if total == 0:
        raise InputError(f"input file {shown} has no data rows; it needs a header and at least one row")
    frame = spark.read.parquet(*files).select("*", "_metadata.file_path", "_metadata.row_index")
    cases = " ".join(f"WHEN {literal(uri)} THEN {offset}" for uri, offset in offsets.items())
    file_path = "regexp_replace(file_path, '^file:/+', 'file:///')"
    return frame.selectExpr("* EXCEPT (file_path, row_index)", f"(CASE {file_path} {cases} END) + row_index AS {ROW}")


def _is_numeric(kind: str) -> bool:
    return kind.startswith(_NUMERIC_TYPES)


def _infer(types: dict[str, str], label: str, shown: str) -> dict[str, FeatureKind]:
    if label not in types:
        raise InputError(f"input file {shown}: missing column(s) {label!r}; columns present: {', '.join(types)}")
    kinds: dict[str, FeatureKind] = {
        n: "numeric" if _is_numeric(k) else "categorical" for n, k in types.items() if n != label
    }
    if not kinds:
        raise InputError(
            f"input file {shown}: only the label column '{label}' is present; add at least one feature column"
        )
    return kinds


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _double(types: dict[str, str], column: str) -> str:
    value = (
        f"CAST({_q(column)} AS DOUBLE)"
        if _is_numeric(types[column]) or types[column] == "boolean"
        else f"try_cast({_q(column)} AS DOUBLE)"
    )
    return f"(CASE WHEN isnan({value}) THEN NULL ELSE {value} END)"


def _text(types: dict[str, str], column: str) -> str:
    name, kind = _q(column), types[column]
    if kind == "string":
        return name
    if kind == "boolean":
        return f"(CASE WHEN {name} THEN 'True' WHEN NOT {name} THEN 'False' END)"
    if kind in ("float", "double"):
        return (
            f"(CASE WHEN isnan({name}) THEN NULL WHEN {name} = floor({name}) "
            f"THEN CAST(CAST({name} AS DECIMAL(38,0)) AS STRING) ELSE CAST({name} AS STRING) END)"
        )
    return f"CAST({name} AS STRING)"


def _typed(types: dict[str, str], schema: TableSchema) -> list[str]:
    items = [
        f"{_double(types, n) if k == 'numeric' else _text(types, n)} AS {_q(n)}" for n, k in schema.features.items()
    ]
    return [*items, _q(schema.label)]


def _check_numeric(spark: Any, types: dict[str, str], column: str, shown: str) -> None:
    if _is_numeric(types[column]) or types[column] == "boolean":
        return
    name = _q(column)
    bad = spark.sql(
        f"SELECT {ROW}, CAST({name} AS STRING) AS v FROM source WHERE {name} IS NOT NULL "
        f"AND try_cast({name} AS DOUBLE) IS NULL ORDER BY {ROW} LIMIT 1"
    ).collect()
    if bad:
        raise InputError(
            f"input file {shown}: column '{column}' is numeric but row {bad[0][0]} holds {bad[0][1]!r}; "
            "fix the value or declare the column categorical"
        )


def _check_labels(spark: Any, types: dict[str, str], label: str, task: Task, shown: str) -> dict[Any, int]:
    name = _q(label)
    missing_when = f"{name} IS NULL" + (f" OR isnan(CAST({name} AS DOUBLE))" if _is_numeric(types[label]) else "")
    missing = spark.sql(f"SELECT {ROW} FROM source WHERE {missing_when} ORDER BY {ROW}").collect()
    if missing:
        raise InputError(
            f"input file {shown}: label column '{label}' has {len(missing)} missing value(s) "
            f"(first rows {[r[0] for r in missing[:5]]}); drop or fill those rows before preprocessing"
        )
    if task == "regression":
        _check_numeric(spark, types, label, shown)
        return {None: spark.sql("SELECT count(*) FROM source").collect()[0][0]}
    counts = {row[0]: row[1] for row in spark.sql(f"SELECT {name}, count(*) FROM source GROUP BY {name}").collect()}
    if len(counts) < 2:
        raise InputError(
            f"input file {shown}: label column '{label}' has a single class {next(iter(counts))!r}; "
            "classification needs at least two classes (or use task='regression')"
        )
    return counts


def _assign_splits(
    spark: Any, typed: Any, label: str, task: Task, fractions: SplitFractions, seed: int, class_rows: dict[Any, int]
) -> Any:
    check_splittable(class_rows, label, task, fractions)
    typed.createOrReplaceTempView("typed")
    group = _q(label) if task == "classification" else "0"
    code = split_code_sql(
        "(row_number() OVER w - 1)", "count(*) OVER (PARTITION BY grp)", fractions.validation, fractions.test
    )
    return spark.sql(
        f"SELECT * EXCEPT (grp, key), {code} AS __split FROM "
        f"(SELECT *, {group} AS grp, {split_key_sql(ROW, seed, 'spark')} AS key FROM typed) "
        "WINDOW w AS (PARTITION BY grp ORDER BY key)"
    )


def _fit(spark: Any, train: Any, schema: TableSchema, task: Task, options: PreprocessOptions) -> FittedPreprocessor:
    train.createOrReplaceTempView("train")
    rows = train.count()
    numeric = [n for n, k in schema.features.items() if k == "numeric"]
    bounds = {}
    if numeric:
        items = []
        for name in numeric:
            column = _q(name)
            impute = f"percentile({column}, 0.5)" if options.numeric_impute == "median" else f"avg({column})"
            low, high = options.clip_quantiles or (0.0, 1.0)
            clip = f"percentile({column}, array({low!r}, {high!r}))"
            items.append(f"count({column}), {impute}, {clip}")
        values = spark.sql(f"SELECT {', '.join(items)} FROM train").collect()[0]
        for index, name in enumerate(numeric):
            count, impute_value, clip = values[3 * index : 3 * index + 3]
            low_value, high_value = clip if clip is not None else (None, None)
            bounds[name] = numeric_bounds(name, count, impute_value, low_value, high_value)
        moments = []
        for name, b in bounds.items():
            clipped = f"least(greatest(coalesce({_q(name)}, {b.impute!r}), {b.clip_low!r}), {b.clip_high!r})"
            moments.append(f"avg({clipped}), stddev_pop({clipped})")
        moment_values = spark.sql(f"SELECT {', '.join(moments)} FROM train").collect()[0]
    features: list[Any] = []
    for name, kind in schema.features.items():
        if kind == "numeric":
            index = list(bounds).index(name)
            features.append(numeric_feature(name, bounds[name], moment_values[2 * index], moment_values[2 * index + 1]))
        else:
            counts = {
                r[0]: r[1]
                for r in spark.sql(
                    f"SELECT {_q(name)}, count(*) FROM train WHERE {_q(name)} IS NOT NULL GROUP BY 1"
                ).collect()
            }
            features.append(fit_categorical(name, counts, options))
    classes, scaler = None, None
    if task == "classification":
        classes = class_list(r[0] for r in spark.sql(f"SELECT DISTINCT {_q(schema.label)} FROM train").collect())
    else:
        target = f"CAST({_q(schema.label)} AS DOUBLE)"
        mean, std = spark.sql(f"SELECT avg({target}), stddev_pop({target}) FROM train").collect()[0]
        scaler = target_scaler(mean, std, schema.label)
    return FittedPreprocessor(
        task=task, label=schema.label, features=features, classes=classes, fitted_on_rows=rows, target_scaler=scaler
    )


def _merge_parts(part_dir: Path, target: Path) -> None:
    """Concatenate Spark's part files, in order, into one Parquet file, one row group at a time."""
    parts = sorted(part_dir.glob("part-*.parquet"))
    writer = None
    try:
        for part in parts:
            reader = pq.ParquetFile(part)
            for index in range(reader.num_row_groups):
                table = reader.read_row_group(index)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is None:
            schema = pq.read_schema(parts[0]) if parts else None
            if schema is None:
                raise InputError(f"Spark wrote no files for {part_dir.name}")
            pq.write_table(schema.empty_table(), target)
    finally:
        if writer is not None:
            writer.close()


__all__ = ["preprocess_spark", "spark_session"]
