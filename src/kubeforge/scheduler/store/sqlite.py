"""The embedded default store: SQLite in WAL mode, one connection per thread, a file lock as lease."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import Cursor, SqlStore

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
CHECKPOINT_INTERVAL_S = 0.25
"""How often a background thread copies committed WAL pages into the database file, off the commit path."""
WAL_SAFETY_PAGES = 20_000
"""Should that thread fall behind, the commit that takes the WAL past this many pages checkpoints itself."""
_LOG = logging.getLogger("kubeforge.scheduler.store")


class SqliteStore(SqlStore):
    """Jobs, queues and tokens in one SQLite file.

    `synchronous="NORMAL"` (the default) writes every commit to the WAL file before it
    returns, so an acknowledged job survives the process being killed; an OS crash or
    power loss may lose the last commits. "FULL" also syncs the WAL to disk at each commit
    (group commit shares that sync between concurrent submissions), so they survive power
    loss too; choose it with `sqlite:///PATH?synchronous=FULL`.

    Checkpoints (copying the WAL into the database file, with a sync) run in a background
    thread every CHECKPOINT_INTERVAL_S rather than inside whichever commit fills the WAL, so
    a submission never waits for one.
    """

    dialect = "sqlite"
    task_indices = "json_each(?) AS task"

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
        self._stop_checkpoints = threading.Event()
        self._checkpointer_pid: int | None = None
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

    def _indices_parameter(self, indices: list[int]) -> Any:
        return json.dumps(indices)

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
        """Stop the checkpoints, close every connection this store opened and drop the lease."""
        self._stop_checkpoints.set()
        self._stop_checkpoints, self._checkpointer_pid = threading.Event(), None
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
            connection.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")
            self._local.connection, self._local.pid = connection, os.getpid()
            with self._lock:
                self._connections.append(connection)
            self._start_checkpoints()
        return connection

    def _start_checkpoints(self) -> None:
        with self._lock:
            if self._checkpointer_pid == os.getpid():
                return
            self._checkpointer_pid = os.getpid()
        stop = self._stop_checkpoints
        threading.Thread(target=self._checkpoint_until, args=(stop,), name="kubeforge-checkpoint", daemon=True).start()

    def _checkpoint_until(self, stop: threading.Event) -> None:
        while not stop.wait(CHECKPOINT_INTERVAL_S):
            try:
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # closing under it, or a busy database: the next round retries
                if not stop.is_set():
                    _LOG.warning("checkpoint of %s failed: %s", self.path, exc)


__all__ = ["CHECKPOINT_INTERVAL_S", "SYNCHRONOUS_MODES", "WAL_SAFETY_PAGES", "SqliteStore"]
