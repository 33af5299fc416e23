"""The replicated store: PostgreSQL, with an advisory lock as the dispatcher lease.

Any number of API replicas write jobs; the one dispatcher holding
`pg_try_advisory_lock(LEASE_KEY)` on its own session claims the inbox with
`SELECT ... FOR UPDATE SKIP LOCKED`. The lock ends with the session, so a killed
dispatcher's lease passes to a standby as soon as PostgreSQL notices the dead connection.

The lease is fenced: taking it increments `dispatcher_lease.generation`, and every write of
the dispatcher (`fenced`) first reads that row `FOR SHARE` and compares it with the
generation it took. A dispatcher whose lease session died while it kept running (split
brain) therefore fails its very next write with LeaseLostError once a standby has taken
over, and the standby's increment waits for any write of the old holder still in flight.
Every connection has a connect timeout, TCP keepalives and a statement timeout, so a dead
or stalled server fails calls instead of hanging them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import Cursor, LeaseLostError, SqlStore, StoreUnavailable, redact

LEASE_KEY = 0x6B7562656667  # "kubefg"
CONNECT_TIMEOUT_S = 2
"""Seconds a new connection may take before the store reports itself unavailable."""
STATEMENT_TIMEOUT_MS = 30_000
"""The longest one statement may run (or wait for a lock) before PostgreSQL cancels it."""
_CONNECTION_SETTINGS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c idle_in_transaction_session_timeout=60000",
}
_LEASE_TABLE = (
    "CREATE TABLE IF NOT EXISTS dispatcher_lease (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "generation BIGINT NOT NULL, holder TEXT NOT NULL DEFAULT '')"
)


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
        self._generation: int | None = None
        self._fencing = False
        """Set once this store first took the lease: from then on its dispatcher writes are fenced."""
        self.migrate()

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction on this thread's connection; a lost or refused connection raises StoreUnavailable."""
        try:
            connection = self._connection()
            with connection.transaction(), connection.cursor() as cursor:
                yield _QmarkCursor(cursor)
        except self._psycopg.OperationalError as exc:
            raise StoreUnavailable(exc) from None

    def _indices_parameter(self, indices: list[int]) -> Any:
        return indices

    def migrate(self) -> int:
        """The shared migrations, then the lease's generation row (once, whoever starts first)."""
        version = super().migrate()
        with self.transaction() as cur:
            cur.execute(self.migration_lock)
            cur.execute(_LEASE_TABLE)
            cur.execute("INSERT INTO dispatcher_lease (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
        return version

    @property
    def lease_generation(self) -> int | None:
        """The generation of the lease this store holds, or None."""
        return self._generation

    def acquire_lease(self) -> bool:
        """Try the session-level advisory lock on a connection kept for the lease; taking it starts a new generation."""
        if self._lease is not None:
            return True
        try:
            connection = self._connect()
        except self._psycopg.OperationalError as exc:
            raise StoreUnavailable(exc) from None
        try:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
            if not (row and row[0]):
                connection.close()
                return False
            holder = f"{socket.gethostname()}:{os.getpid()}"
            generation = connection.execute(
                "UPDATE dispatcher_lease SET generation = generation + 1, holder = %s "
                "WHERE id = 1 RETURNING generation",
                (holder,),
            ).fetchone()[0]
        except self._psycopg.Error as exc:
            connection.close()
            raise StoreUnavailable(exc) from None
        self._lease, self._generation, self._fencing = connection, int(generation), True
        return True

    @contextmanager
    def fenced(self) -> Iterator[Cursor]:
        """A write transaction that first checks, under a share lock on the lease row, that the lease is still ours
        (a store that never took the lease, such as a tool's, writes unfenced)."""
        if not self._fencing:
            with self.transaction() as cur:
                yield cur
            return
        generation = self._generation
        try:
            with self.transaction() as cur:
                row = cur.execute("SELECT generation FROM dispatcher_lease WHERE id = 1 FOR SHARE").fetchone()
                current = int(row[0]) if row else None
                if generation is None or current != generation:
                    raise LeaseLostError(
                        f"the dispatcher lease moved on (generation {current}, this dispatcher held {generation}): "
                        "another dispatcher is active; this one stops and stands by"
                    )
                yield cur
        except LeaseLostError:
            self._drop_lease()
            raise

    def lease_lost(self) -> bool:
        """True unless the lease's session still answers (so its advisory lock is still held)."""
        if self._lease is None:
            return True
        try:
            self._lease.execute("SELECT 1").fetchone()
        except self._psycopg.Error:
            self._drop_lease()
            return True
        return False

    def _drop_lease(self) -> None:
        lease, self._lease, self._generation = self._lease, None, None
        if lease is not None:
            with contextlib.suppress(self._psycopg.Error):  # a session already gone took its lock along
                lease.execute("SELECT pg_advisory_unlock(%s)", (LEASE_KEY,))
            lease.close()

    def close(self) -> None:
        """Close every connection, which also releases the lease."""
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
        # unlock now: the server ends a closed session, and frees its locks, only a moment later
        self._drop_lease()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _connect(self) -> Any:
        """A new autocommit connection with the timeouts every call here relies on."""
        return self._psycopg.connect(self.url, autocommit=True, **_CONNECTION_SETTINGS)


__all__ = ["CONNECT_TIMEOUT_S", "LEASE_KEY", "STATEMENT_TIMEOUT_MS", "PostgresStore"]
