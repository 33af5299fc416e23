"""Store fixtures: every store-backed scheduler test runs against SQLite and against PostgreSQL.

PostgreSQL is Debian's postgresql-15 (`make system-deps`), started once per session on
loopback in a temporary folder; each test gets a fresh database on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresServer, postgres_available, running_postgres

STORES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session."""
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps` (installs postgresql-15)")
    with running_postgres() as server:
        yield server


def _store_url(request: pytest.FixtureRequest, folder: Path) -> str:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.create_database()
    return f"sqlite:///{folder / 'kf.db'}"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, or a new PostgreSQL database."""
    return _store_url(request, tmp_path)


@pytest.fixture(scope="module", params=STORES)
def module_store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Like `store_url`, shared by one module's tests."""
    return _store_url(request, tmp_path_factory.mktemp("store"))
