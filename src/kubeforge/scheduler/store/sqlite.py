"""The embedded default store: SQLite in WAL mode, one connection per thread, a file lock as lease."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

from kubeforge.errors import InputError
from kubeforge.scheduler.store.base import Cursor, SqlStore, StoreUnavailable

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
BUSY_TIMEOUT_S = 1.0
"""How long a write waits for another writer's lock before the store reports itself unavailable: short,
so that the API answers 503 within a second or two while something holds the lock."""
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

    Reads run in deferred transactions, which in WAL mode never wait for a writer; writes take
    the write lock at BEGIN IMMEDIATE and wait at most `busy_timeout_s` for it.
    """

    dialect = "sqlite"
    task_indices = "json_each(?) AS task"

    def __init__(self, path: str | Path, synchronous: str = "NORMAL", busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise InputError(f"synchronous: {synchronous!r} is not one of {', '.join(SYNCHRONOUS_MODES)}")
        self.busy_timeout_s = busy_timeout_s
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous
        self._local = threading.local()
        self._lease: IO[bytes] | None = None
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._stop_checkpoints = threading.Event()
        self._checkpointer_pid: int | None = None
        self._checkpointer: threading.Thread | None = None
        self.migrate()

    def transaction(self) -> AbstractContextManager[Cursor]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection."""
        return self._transaction("BEGIN IMMEDIATE")

    def read(self) -> AbstractContextManager[Cursor]:
        """A deferred BEGIN ... COMMIT: a snapshot that takes no lock."""
        return self._transaction("BEGIN")

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Cursor]:
        try:
            connection = self._connection()
            connection.execute(begin)
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk I/O, a vanished file
            raise StoreUnavailable(exc) from None
        try:
            yield connection.cursor()
            connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(connection)
            raise StoreUnavailable(exc) from None
        except BaseException:
            _rollback(connection)
            raise

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
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer is not threading.current_thread():
            checkpointer.join(timeout=30)  # a connection closed under a running checkpoint crashes SQLite
        self._stop_checkpoints, self._checkpointer_pid, self._checkpointer = threading.Event(), None, None
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
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s
            )
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
        self._checkpointer = threading.Thread(
            target=self._checkpoint_until, args=(stop,), name="kubeforge-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_until(self, stop: threading.Event) -> None:
        while not stop.wait(CHECKPOINT_INTERVAL_S):
            try:
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # closing under it, or a busy database: the next round retries
                if not stop.is_set():
                    _LOG.warning("checkpoint of %s failed: %s", self.path, exc)


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


__all__ = ["BUSY_TIMEOUT_S", "CHECKPOINT_INTERVAL_S", "SYNCHRONOUS_MODES", "WAL_SAFETY_PAGES", "SqliteStore"]
