"""A PostgreSQL server (Debian's postgresql-15) on loopback in a temporary folder, for tests and benchmarks.

initdb and pg_ctl run as the `postgres` user (the server refuses root); the data folder,
socket and log live under one temporary folder, and the server is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_DATABASES = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    """A running server that trusts local connections as user `postgres`."""

    root: Path
    port: int
    _process: list[subprocess.Popen[bytes]] = field(default_factory=list, compare=False, repr=False)

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for `database` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"kf_{os.getpid()}_{next(_DATABASES)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def add_password_role(self, role: str, password: str) -> None:
        """Create a login role that must give `password` over TCP (scram-sha-256); other roles stay trusted."""
        import psycopg
        from psycopg import sql

        hba = self.root / "data" / "pg_hba.conf"
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
            connection.execute("SELECT pg_reload_conf()")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server (every client is disconnected), stay down `down_s` seconds, start it again."""
        _stop(self.root, self._process.pop())
        time.sleep(down_s)
        self._process.append(_start(self.root, self.port))


def postgres_available() -> bool:
    """True when Debian's postgresql-15 server binaries are installed."""
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "postgres").is_file() and shutil.which("runuser") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """initdb, start the server on a free loopback port, yield it, stop it by PID and remove its folder."""
    root = Path(tempfile.mkdtemp(prefix="kubeforge-pg-"))
    root.chmod(0o755)
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    subprocess.run(
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"),
        check=True,
        capture_output=True,
    )
    server = PostgresServer(root, _free_port())
    try:
        server._process.append(_start(root, server.port))
        yield server
    finally:
        if server._process:
            _stop(root, server._process.pop())
        shutil.rmtree(root, ignore_errors=True)


def _start(root: Path, port: int) -> subprocess.Popen[bytes]:
    settings = [
        "-p", str(port), "-c", "listen_addresses=127.0.0.1", "-k", str(root),
        "-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB",
    ]  # fmt: skip
    with open(root / "server.log", "ab") as log:  # the server keeps its own copy of the descriptor
        server = subprocess.Popen(
            _as_postgres(str(PG_BIN / "postgres"), "-D", str(root / "data"), *settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {(root / 'server.log').read_text()}") from None
                time.sleep(0.05)
        _wait_ready(port)
    except BaseException:
        _stop(root, server)
        raise
    return server


def _stop(root: Path, server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (disconnect clients, stop) by the postmaster's PID; SIGKILL after 30 s."""
    pid = _postmaster_pid(root / "data") or server.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        server.wait()


def _wait_ready(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


__all__ = ["PostgresServer", "postgres_available", "running_postgres"]
