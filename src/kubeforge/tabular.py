"""Reading tabular files and checking them against a declared or inferred schema.

Every failure names the file and the column, and says what to do about it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from kubeforge.artifacts import is_remote, read_bytes
from kubeforge.categories import listed
from kubeforge.errors import InputError

FeatureKind = Literal["numeric", "categorical"]
FEATURE_KINDS: tuple[FeatureKind, ...] = ("numeric", "categorical")
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}


@dataclass(frozen=True)
class TableSchema:
    """Feature columns with their kind, plus the label column."""

    features: dict[str, FeatureKind]
    label: str

    def to_json(self) -> dict[str, object]:
        """The schema as a JSON-ready mapping, stored with every model."""
        return {"label": self.label, "features": dict(self.features)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TableSchema:
        """Rebuild a schema written by `to_json`."""
        features = data.get("features")
        if not isinstance(features, dict):
            raise InputError("schema: 'features' must be a mapping of column name to kind")
        return cls(features=parse_feature_kinds(features, source="schema"), label=str(data["label"]))


def parse_feature_kinds(declared: dict[str, object], source: str) -> dict[str, FeatureKind]:
    """Validate a mapping of column name to feature kind, naming any bad entry."""
    kinds: dict[str, FeatureKind] = {}
    for column, kind in declared.items():
        if kind not in FEATURE_KINDS:
            raise InputError(
                f"{source}: column '{column}' has kind {kind!r}; valid kinds are {', '.join(FEATURE_KINDS)}"
            )
        kinds[str(column)] = kind
    return kinds


def parse_declared_schema(text: str) -> dict[str, FeatureKind] | None:
    """Parse a schema given as JSON text (`{"col": "numeric", ...}`); empty text means infer."""
    if not text.strip():
        return None
    try:
        declared = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"schema: not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(declared, dict) or not declared:
        raise InputError('schema: expected a JSON object such as {"age": "numeric", "city": "categorical"}')
    return parse_feature_kinds(declared, source="schema")


def read_table(path: str | Path, text_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file; an empty or unreadable file is an InputError naming it.

    `text_columns` are read from CSV as text, so codes such as `0150` keep their leading zeros.
    An s3:// or gs:// URI is fetched to a temporary file first.
    """
    if is_remote(str(path)):
        with tempfile.TemporaryDirectory(prefix="kubeforge-table-") as scratch:
            local = Path(scratch) / str(path).rstrip("/").rsplit("/", 1)[-1]
            local.write_bytes(read_bytes(str(path)))
            return read_table(local, text_columns)
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"input file {path} is empty; give a CSV with a header row or a Parquet file")
    try:
        if path.suffix.lower() in _PARQUET_SUFFIXES or path.is_dir() or _looks_like_parquet(path):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in _CSV_SUFFIXES or path.suffix == "":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, dtype=dict.fromkeys(text_columns or [], "string"))
        else:
            raise InputError(f"input file {path}: unknown format {path.suffix!r}; use .csv or .parquet")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"input file {path} cannot be read as a table: {exc}") from exc
    if frame.empty:
        raise InputError(f"input file {path} has no data rows; it needs a header and at least one row")
    return frame


def _looks_like_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def infer_schema(frame: pd.DataFrame, label: str, source: str = "input") -> TableSchema:
    """Infer feature kinds: numeric dtypes are numeric, everything else categorical."""
    require_columns(frame, [label], source=source)
    features: dict[str, FeatureKind] = {}
    for column in frame.columns:
        if column == label:
            continue
        is_numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        features[str(column)] = "numeric" if is_numeric else "categorical"
    if not features:
        raise InputError(f"{source}: only the label column '{label}' is present; add at least one feature column")
    return TableSchema(features=features, label=label)


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """Raise an InputError naming every expected column that the frame lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        present = listed(frame.columns)
        raise InputError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; columns present: {present}"
        )


def coerce_to_schema(frame: pd.DataFrame, schema: TableSchema, source: str) -> pd.DataFrame:
    """Check the frame against the schema and return it with numeric features as float64.

    A numeric column holding text is reported with the first offending row and value.
    """
    require_columns(frame, [*schema.features, schema.label], source=source)
    columns: dict[str, pd.Series] = {}
    for column, kind in schema.features.items():
        columns[column] = (
            numeric_column(frame[column], column, source) if kind == "numeric" else categorical_column(frame[column])
        )
    columns[schema.label] = frame[schema.label]
    return pd.DataFrame(columns, index=frame.index)


def numeric_column(values: pd.Series, column: str, source: str) -> pd.Series:
    """Convert a column to float64, naming the first non-numeric value if there is one."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        position = int(bad.to_numpy().argmax())
        row, value = values.index[position], values.iloc[position]
        raise InputError(
            f"{source}: column '{column}' is numeric but row {row} holds {value!r}; "
            "fix the value or declare the column categorical"
        )
    return converted.astype("float64")


def categorical_column(values: pd.Series) -> pd.Series:
    """Represent a categorical column as strings, keeping missing values as missing."""
    return values.map(_category_text, na_action="ignore").astype(object).where(values.notna(), None)


def _category_text(value: object) -> str:
    """Integral floats print as integers, so codes read as 1.0 from a CSV with gaps match 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = [
    "FEATURE_KINDS",
    "FeatureKind",
    "TableSchema",
    "categorical_column",
    "coerce_to_schema",
    "infer_schema",
    "numeric_column",
    "parse_declared_schema",
    "parse_feature_kinds",
    "read_table",
    "require_columns",
]
