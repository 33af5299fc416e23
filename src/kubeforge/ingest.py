"""Ingest: turn a data source into a local table file that the preprocessing backends read.

Sources: a local CSV/Parquet file (or directory of Parquet files), an ``s3://`` or ``gs://`` object
(streamed to a temporary file through `kubeforge.artifacts`), or a PostgreSQL query (a
``postgresql://`` connection URI plus the query text; rows are streamed from a server-side cursor
into a Parquet file in batches, so a large result never sits in memory whole).

Errors raised while the local copy is in use name the original source, not the temporary file.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubeforge.artifacts import download_file, is_remote
from kubeforge.errors import InputError, KubeforgeError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_FETCH_ROWS = 50_000
# PostgreSQL type OIDs mapped to Arrow types; anything else is written as text.
_INT_OIDS = {20, 21, 23, 26}
_FLOAT_OIDS = {700, 701, 1700}
_BOOL_OIDS = {16}


def is_postgres(uri: str) -> bool:
    """Whether `uri` is a PostgreSQL connection URI."""
    return uri.startswith(POSTGRES_SCHEMES)


@contextlib.contextmanager
def local_table(source: str, query: str = "") -> Iterator[Path]:
    """Yield a local path holding the table at `source` (with `query` for a PostgreSQL source).

    A local path is yielded as it is; remote objects and query results live in a temporary directory
    removed when the block ends. A KubeforgeError raised in the block that names the temporary copy is
    re-raised naming `source` instead.
    """
    if is_postgres(source):
        if not query.strip():
            raise InputError(f"{_redacted(source)}: a PostgreSQL source needs a query (SELECT ...)")
    elif query:
        raise InputError(f"query is set but the source {source!r} is not a postgresql:// URI; drop one of them")
    if not is_postgres(source) and not is_remote(source):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory(prefix="kubeforge-ingest-") as scratch:
        if is_postgres(source):
            local = Path(scratch) / "query.parquet"
            query_to_parquet(source, query, local)
            shown = f"query result of {_redacted(source)}"
        else:
            local = Path(scratch) / source.rstrip("/").rsplit("/", 1)[-1]
            download_file(source, local)
            shown = source
        try:
            yield local
        except KubeforgeError as exc:
            if str(local) not in str(exc):
                raise
            raise type(exc)(str(exc).replace(str(local), shown)) from exc


def require_psycopg() -> Any:
    """The psycopg module, or an InputError saying how to install it."""
    try:
        import psycopg
    except ImportError as exc:
        raise InputError("a PostgreSQL source needs psycopg: pip install 'kubeforge[postgres]'") from exc
    return psycopg


def query_to_parquet(dsn: str, query: str, destination: Path, password: str | None = None) -> int:
    """Run `query` on PostgreSQL and stream its rows into a Parquet file; returns the row count.

    `password`, when given, is passed to the connection beside `dsn` (so it never needs to be in
    the URI). The query runs in a read-only transaction. An empty result or a failing query is an
    InputError naming the query; nothing is left at `destination` then.
    """
    psycopg = require_psycopg()
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    writer: Any = None
    try:
        extra: dict[str, Any] = {} if password is None else {"password": password}
        with psycopg.connect(dsn, **extra) as connection:
            connection.read_only = True  # ingest only reads: a query that would write fails instead
            with connection.cursor(name="kubeforge_ingest") as cursor:
                cursor.itersize = _FETCH_ROWS
                cursor.execute(query)
                while batch := cursor.fetchmany(_FETCH_ROWS):
                    if writer is None:
                        schema = _arrow_schema(cursor.description or [])
                        writer = pq.ParquetWriter(destination, schema)
                    columns = list(zip(*batch, strict=True))
                    arrays = [
                        _arrow_column(values, field.type) for values, field in zip(columns, writer.schema, strict=True)
                    ]
                    writer.write_table(pa.Table.from_arrays(arrays, schema=writer.schema))
                    rows += len(batch)
    except psycopg.Error as exc:
        destination.unlink(missing_ok=True)
        raise InputError(f"PostgreSQL query {_short(query)!r} failed: {str(exc).strip()}") from exc
    finally:
        if writer is not None:
            writer.close()
    if rows == 0:
        destination.unlink(missing_ok=True)
        raise InputError(f"PostgreSQL query {_short(query)!r} returned no rows; check its WHERE clause and table")
    return rows


def _arrow_schema(description: Any) -> Any:
    import pyarrow as pa

    fields = []
    for column in description:
        if column.type_code in _INT_OIDS:
            kind = pa.int64()
        elif column.type_code in _FLOAT_OIDS:
            kind = pa.float64()
        elif column.type_code in _BOOL_OIDS:
            kind = pa.bool_()
        else:
            kind = pa.string()
        fields.append(pa.field(column.name, kind))
    return pa.schema(fields)


def _arrow_column(values: tuple[Any, ...], kind: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_string(kind):
        values = tuple(None if v is None else str(v) for v in values)
    elif pa.types.is_float64(kind):
        values = tuple(None if v is None else float(v) for v in values)
    return pa.array(values, type=kind)


def _redacted(dsn: str) -> str:
    """The URI without its password."""
    scheme, _, rest = dsn.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return dsn
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def _short(query: str) -> str:
    text = " ".join(query.split())
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["POSTGRES_SCHEMES", "is_postgres", "local_table", "query_to_parquet", "require_psycopg"]
