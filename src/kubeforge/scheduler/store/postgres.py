"""The replicated store: PostgreSQL, with an advisory lock as the dispatcher lease.

Any number of API replicas write jobs; the one dispatcher holding
`pg_try_advisory_lock(LEASE_KEY)` on its own session claims the inbox with
`SELECT ... FOR UPDATE SKIP LOCKED`. The lock ends with the session, so a killed
dispatcher's lease passes to a standby as soon as PostgreSQL notices the dead connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kubeforge.errors import InputError, StoreError
from kubeforge.scheduler.store.base import Cursor, SqlStore

LEASE_KEY = 0x6B7562656667  # "kubefg"


class _QmarkCursor:
    """Lets the shared SQL (qmark placeholders) run on psycopg (format placeholders)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._cursor.execute(sql.replace("?", "%s"), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        self._cursor.executemany(sql.replace("?", "%s"), rows)
        return self

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def fetchone(self) -> Any:
        return self._cursor.fetchone()


class PostgresStore(SqlStore):
    """Jobs, queues and tokens in PostgreSQL; one connection per thread plus one for the lease."""

    dialect = "postgresql"
    task_indices = "unnest(CAST(? AS integer[])) AS task(value)"
    claim_lock = " FOR UPDATE SKIP LOCKED"
    migration_lock = f"SELECT pg_advisory_xact_lock({LEASE_KEY + 1})"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise InputError("the PostgreSQL store needs psycopg: pip install 'kubeforge[postgres]'") from None
        self._psycopg = psycopg
        self.url = url
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._lease: Any = None
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction on this thread's connection."""
        connection = self._connection()
        with connection.transaction(), connection.cursor() as cursor:
            yield _QmarkCursor(cursor)

    def _indices_parameter(self, indices: list[int]) -> Any:
        return indices

    def acquire_lease(self) -> bool:
        """Try the session-level advisory lock on a connection kept for the lease."""
        if self._lease is not None:
            return True
        connection = self._psycopg.connect(self.url, autocommit=True)
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
        if not (row and row[0]):
            connection.close()
            return False
        self._lease = connection
        return True

    def close(self) -> None:
        """Close every connection, which also releases the lease."""
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
        if self._lease is not None:
            # unlock now: the server ends a closed session, and frees its locks, only a moment later
            with contextlib.suppress(self._psycopg.Error):  # a session already gone took its lock along
                self._lease.execute("SELECT pg_advisory_unlock(%s)", (LEASE_KEY,))
            self._lease.close()
            self._lease = None

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            try:
                connection = self._psycopg.connect(self.url, autocommit=True)
            except self._psycopg.OperationalError as exc:
                raise StoreError(f"store {self.url!r}: cannot connect to PostgreSQL: {exc}") from None
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection


__all__ = ["LEASE_KEY", "PostgresStore"]
