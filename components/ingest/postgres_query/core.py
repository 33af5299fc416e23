"""`ingest/postgres_query`: run a PostgreSQL query and write its rows as one Parquet file.

The connection URI is a pipeline parameter, and pipeline parameters are stored in plain text
with every run, so a URI that carries a password is refused. The password comes from the
environment instead: libpq's own ``PGPASSWORD`` (or ``.pgpass``, client certificates), or the
variable named by `password_env`, which a Kubernetes secret is mounted as.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubeforge.artifacts import atomic_output
from kubeforge.errors import InputError
from kubeforge.ingest import is_postgres, query_to_parquet, require_psycopg


@dataclass(frozen=True)
class QueryResult:
    """What the query produced: its row count and column names."""

    rows: int
    columns: list[str]


def run(connection_uri: str, query: str, output: str | Path, password_env: str = "") -> QueryResult:
    """Run `query` against `connection_uri` and publish its rows at `output` (Parquet).

    `password_env` names an environment variable holding the password ("" leaves authentication to
    libpq: PGPASSWORD, .pgpass or certificates). An empty result, a failing query or a refused URI is
    an InputError, and nothing is published at `output` then.
    """
    _check_uri(connection_uri)
    if not query.strip():
        raise InputError("query is empty; give the SELECT whose rows become the dataset")
    password = _password(password_env)
    with atomic_output(str(output)) as staged:
        rows = query_to_parquet(connection_uri, query, staged, password=password)
        columns = _column_names(staged)
    return QueryResult(rows=rows, columns=columns)


def _check_uri(connection_uri: str) -> None:
    if not is_postgres(connection_uri):
        raise InputError(
            f"connection_uri {connection_uri!r} is not a PostgreSQL URI; "
            "use postgresql://USER@HOST:PORT/DATABASE (the password comes from the environment)"
        )
    psycopg = require_psycopg()
    from psycopg.conninfo import conninfo_to_dict

    try:
        settings = conninfo_to_dict(connection_uri)
    except psycopg.ProgrammingError as exc:
        raise InputError(f"connection_uri is not a valid PostgreSQL URI: {str(exc).strip()}") from exc
    if settings.get("password"):
        raise InputError(
            "connection_uri carries a password, and pipeline parameters are stored in plain text with the run; "
            "remove it from the URI and mount it from a Kubernetes secret as an environment variable "
            "(PGPASSWORD, or the variable named by password_env)"
        )


def _password(password_env: str) -> str | None:
    if not password_env:
        return None
    value = os.environ.get(password_env)
    if value is None:
        raise InputError(
            f"password_env is {password_env!r} but that environment variable is not set; mount the secret "
            "holding the password as that variable, or set password_env to '' to use PGPASSWORD/.pgpass"
        )
    return value


def _column_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


__all__ = ["QueryResult", "run"]
