"""Apply a fitted preprocessor to Parquet with DuckDB, streaming: the model-input columns as float32 Parquet.

The SQL computes exactly `FittedPreprocessor.transform` (impute, clip, scale; one-hot or ordinal codes;
an unknown category stops the query with an error naming the column and value), row group by row
group, so a split larger than memory is transformed with bounded memory.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.duckdb_source import first_line, literal, quote
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor


def transform_sql(preprocessor: FittedPreprocessor) -> list[str]:
    """SELECT items producing `preprocessor.output_columns`, in order, as FLOAT."""
    items: list[str] = []
    for feature in preprocessor.features:
        column = quote(feature.name)
        if not isinstance(feature, CategoricalFeature):
            clipped = (
                f"least(greatest(coalesce({column}, {feature.impute!r}), {feature.clip_low!r}), {feature.clip_high!r})"
            )
            items.append(f"CAST(({clipped} - {feature.mean!r}) / {feature.std!r} AS FLOAT) AS {column}")
            continue
        known = ", ".join(literal(c) for c in feature.categories)
        value = (
            f"(CASE WHEN coalesce({column}, {literal(feature.impute)}) IN ({known}) "
            f"THEN coalesce({column}, {literal(feature.impute)}) ELSE error('column ' || {literal(repr(feature.name))} "
            f"|| ' has unknown category ' || {column}) END)"
        )
        if feature.encoding == "ordinal":
            codes = " ".join(f"WHEN {literal(c)} THEN {i}" for i, c in enumerate(feature.categories))
            items.append(f"CAST(CASE {value} {codes} END AS FLOAT) AS {column}")
        else:
            items.append(f"{value} AS {quote('__cat_' + feature.name)}")
    return items


def _onehot(preprocessor: FittedPreprocessor) -> list[str]:
    items: list[str] = []
    for feature in preprocessor.features:
        if isinstance(feature, CategoricalFeature) and feature.encoding == "onehot":
            source = quote("__cat_" + feature.name)
            items += [
                f"CAST({source} = {literal(c)} AS FLOAT) AS {quote(f'{feature.name}={c}')}" for c in feature.categories
            ]
        else:
            items.append(quote(feature.name))
    return items


def transform_parquet(
    connection: duckdb.DuckDBPyConnection, preprocessor: FittedPreprocessor, relation: str, destination: Path
) -> None:
    """Write the transformed rows of `relation` (raw feature columns) to `destination` as Parquet."""
    checked = f"(SELECT {', '.join(transform_sql(preprocessor))} FROM {relation})"
    try:
        connection.execute(
            f"COPY (SELECT {', '.join(_onehot(preprocessor))} FROM {checked}) "
            f"TO {literal(str(destination))} (FORMAT parquet)"
        )
    except duckdb.Error as exc:
        raise InputError(f"{relation}: cannot apply the preprocessor: {first_line(exc)}") from exc


__all__ = ["transform_parquet", "transform_sql"]
