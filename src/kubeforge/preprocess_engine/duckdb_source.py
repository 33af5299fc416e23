"""DuckDB input for preprocessing and validation: open a CSV/Parquet source, type it by a schema, check it.

Every input row gets a 0-based row number (`__row`) in file order, the same number the pandas
backend's row index carries, so errors name the same row and every backend splits alike. A CSV is
converted once to Parquet in the scratch directory (DuckDB's strict CSV reader: ragged rows fail
with their line number); Parquet row numbers come from the files themselves.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.tabular import FeatureKind, TableSchema

ROW = "__row"
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ""}
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class Source:
    """An opened input: the SQL relation (with `__row`), its column types and the name to show in errors."""

    relation: str
    types: dict[str, str]
    shown: str

    def is_numeric(self, column: str) -> bool:
        """Whether the stored type is a number (not a boolean)."""
        kind = self.types[column]
        return kind in _INTEGER_TYPES or kind in _FLOAT_TYPES or kind.startswith("DECIMAL")


def quote(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def open_source(
    connection: duckdb.DuckDBPyConnection, path: Path, shown: str, scratch: Path, text_columns: list[str]
) -> Source:
    """Open the CSV or Parquet input at `path`; unreadable, empty or corrupt input is an InputError."""
    if not path.exists():
        raise InputError(f"input file {shown} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"input file {shown} is empty; give a CSV with a header row or a Parquet file")
    files = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else [str(path)]
    if not files:
        raise InputError(f"input directory {shown} holds no .parquet files")
    if not path.is_dir() and not _is_parquet(path):
        if path.suffix.lower() not in _CSV_SUFFIXES:
            raise InputError(f"input file {shown}: unknown format {path.suffix!r}; use .csv or .parquet")
        files = [str(csv_to_parquet(connection, path, shown, scratch, text_columns))]
    relation = _parquet_relation(connection, files, shown)
    try:
        described = connection.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        rows = connection.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise InputError(f"input file {shown} cannot be read as a table: {_first_line(exc)}") from exc
    if rows == 0:
        raise InputError(f"input file {shown} has no data rows; it needs a header and at least one row")
    types = {str(name): str(kind) for name, kind, *_ in described if name != ROW}
    return Source(relation=relation, types=types, shown=shown)


def infer_kinds(connection: duckdb.DuckDBPyConnection, source: Source, label: str) -> dict[str, FeatureKind]:
    """Numeric stored types are numeric features, everything else categorical (as the pandas backend).

    A text column with no values at all is numeric, as pandas reads an all-empty CSV column as float.
    """
    require(source, [label])
    text = [name for name, kind in source.types.items() if kind == "VARCHAR" and name != label]
    empty: set[str] = set()
    if text:
        counts = connection.sql(f"SELECT {', '.join(f'count({quote(n)})' for n in text)} FROM {source.relation}")
        empty = {name for name, count in zip(text, counts.fetchall()[0], strict=True) if count == 0}
    kinds: dict[str, FeatureKind] = {
        name: "numeric" if source.is_numeric(name) or name in empty else "categorical"
        for name in source.types
        if name != label
    }
    if not kinds:
        raise InputError(
            f"input file {source.shown}: only the label column '{label}' is present; add at least one feature column"
        )
    return kinds


def require(source: Source, columns: list[str]) -> None:
    """Raise naming every expected column the source lacks."""
    missing = [column for column in columns if column not in source.types]
    if missing:
        present = listed(source.types)
        raise InputError(
            f"input file {source.shown}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {present}"
        )


def numeric_expression(source: Source, column: str) -> str:
    """The column as DOUBLE with NaN as NULL (pandas treats NaN as missing)."""
    name = quote(column)
    value = f"CAST({name} AS DOUBLE)" if source.is_numeric(column) else f"TRY_CAST({name} AS DOUBLE)"
    if source.types[column] == "BOOLEAN":
        value = f"CAST({name} AS DOUBLE)"
    return f"(CASE WHEN isnan({value}) THEN NULL ELSE {value} END)"


def text_expression(source: Source, column: str) -> str:
    """The column as category text, written as `kubeforge.tabular.categorical_column` writes it."""
    name = quote(column)
    kind = source.types[column]
    if kind == "VARCHAR":
        return name
    if kind == "BOOLEAN":
        return f"(CASE WHEN {name} THEN 'True' WHEN NOT {name} THEN 'False' END)"
    if kind in _FLOAT_TYPES:
        return (
            f"(CASE WHEN isnan({name}) THEN NULL WHEN isfinite({name}) AND {name} = trunc({name}) "
            f"THEN CAST(CAST({name} AS HUGEINT) AS VARCHAR) ELSE CAST({name} AS VARCHAR) END)"
        )
    return f"CAST({name} AS VARCHAR)"


def check_numeric(connection: duckdb.DuckDBPyConnection, source: Source, column: str) -> None:
    """A numeric column stored as text must parse everywhere; the first bad row is named."""
    if source.is_numeric(column) or source.types[column] == "BOOLEAN":
        return
    name = quote(column)
    bad = connection.sql(
        f"SELECT {ROW}, CAST({name} AS VARCHAR) FROM {source.relation} "
        f"WHERE {name} IS NOT NULL AND TRY_CAST({name} AS DOUBLE) IS NULL ORDER BY {ROW} LIMIT 1"
    ).fetchall()
    if bad:
        row, value = bad[0]
        raise InputError(
            f"input file {source.shown}: column '{column}' is numeric but row {row} holds {value!r}; "
            "fix the value or declare the column categorical"
        )


def typed_columns(source: Source, schema: TableSchema) -> list[str]:
    """SELECT items: the features typed by the schema, then the label as stored."""
    items = [
        f"{numeric_expression(source, name) if kind == 'numeric' else text_expression(source, name)} AS {quote(name)}"
        for name, kind in schema.features.items()
    ]
    return [*items, quote(schema.label)]


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def csv_to_parquet(
    connection: duckdb.DuckDBPyConnection, path: Path, shown: str, scratch: Path, text_columns: list[str]
) -> Path:
    """Convert a CSV file to `scratch`/input.parquet (row order kept); a ragged or unreadable CSV names its line."""
    target = scratch / "input.parquet"
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    header = _csv_header(path, separator)
    types = ", ".join(f"{literal(column)}: 'VARCHAR'" for column in text_columns if column in header)
    options = f"header=true, strict_mode=true, null_padding=false, delim={literal(separator)}"
    if types:
        options += f", types={{{types}}}"
    try:
        connection.execute(
            f"COPY (SELECT * FROM read_csv({literal(str(path))}, {options})) TO {literal(str(target))} (FORMAT parquet)"
        )
    except duckdb.Error as exc:
        raise InputError(
            f"input file {shown} cannot be read as a CSV table: {_csv_problem(path, separator, exc)}"
        ) from exc
    return target


def _csv_header(path: Path, separator: str) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle, delimiter=separator), [])


def _csv_problem(path: Path, separator: str, exc: Exception) -> str:
    """Name the first ragged line when there is one (DuckDB's sniffer reports only that sniffing failed)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=separator)
        width = len(next(reader, []))
        for row in reader:
            if row and len(row) != width:
                return f"line {reader.line_num} has {len(row)} fields but the header has {width}; fix or drop that row"
    return _first_line(exc)


def _parquet_relation(connection: duckdb.DuckDBPyConnection, files: list[str], shown: str) -> str:
    listed = "[" + ", ".join(literal(f) for f in files) + "]"
    if len(files) == 1:
        return (
            f"(SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW} "
            f"FROM read_parquet({listed}, file_row_number=true))"
        )
    try:
        counts = connection.sql(
            "SELECT file_name, sum(row_group_num_rows) FROM (SELECT DISTINCT file_name, row_group_id, "
            f"row_group_num_rows FROM parquet_metadata({listed})) GROUP BY file_name"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"input directory {shown} cannot be read as Parquet: {_first_line(exc)}") from exc
    rows = dict(counts)
    offsets, total = [], 0
    for file in files:
        offsets.append(f"WHEN {literal(file)} THEN {total}")
        total += int(rows.get(file, 0))
    offset = f"(CASE filename {' '.join(offsets)} END)"
    return (
        f"(SELECT * EXCLUDE (filename, file_row_number), {offset} + file_row_number AS {ROW} "
        f"FROM read_parquet({listed}, filename=true, file_row_number=true))"
    )


def first_line(exc: Exception) -> str:
    """The first line of an engine error, for messages that name the file."""
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = [
    "ROW",
    "Source",
    "check_numeric",
    "csv_to_parquet",
    "first_line",
    "infer_kinds",
    "literal",
    "numeric_expression",
    "open_source",
    "quote",
    "require",
    "text_expression",
    "typed_columns",
]
