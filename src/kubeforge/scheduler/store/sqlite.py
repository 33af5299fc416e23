"""The embedded default store: SQLite in WAL mode, one connection per thread, a file lock as lease."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import Cursor, SqlStore

SYNCHRONOUS_MODES = ("NORMAL", "FULL")


class SqliteStore(SqlStore):
    """Jobs, queues and tokens in one SQLite file.

    `synchronous="NORMAL"` (the default) makes every commit survive the process being
    killed (WAL); "FULL" also survives power loss, at an fsync per commit.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise InputError(f"synchronous: {synchronous!r} is not one of {', '.join(SYNCHRONOUS_MODES)}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous
        self._local = threading.local()
        self._lease: IO[bytes] | None = None
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection.cursor()
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def acquire_lease(self) -> bool:
        """Hold an exclusive lock on `<db>.lease` until `close` or the process ends."""
        if self._lease is not None:
            return True
        handle = open(f"{self.path}.lease", "ab")  # noqa: SIM115 - held open as the lease
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lease = handle
        return True

    def close(self) -> None:
        """Close every connection this store opened and drop the lease."""
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
        if self._lease is not None:
            self._lease.close()
            self._lease = None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.connection, self._local.pid = connection, os.getpid()
            with self._lock:
                self._connections.append(connection)
        return connection


__all__ = ["SYNCHRONOUS_MODES", "SqliteStore"]
