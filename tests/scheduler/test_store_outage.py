"""The scheduler while its store is locked or gone: probes keep answering, requests get 503 with
Retry-After and never the store's password, and everything resumes once the store is back; and the
store URL and admin token reach the server without passing through its command line."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from postgres_server import PostgresServer
from scheduler_server import serving

from kubeforge.errors import InputError
from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store import StoreUnavailable, open_store
from kubeforge.scheduler.store.sqlite import SqliteStore
from kubeforge.scheduler_client import SchedulerClient

ADMIN = "outage-admin-token-0123456789"
PASSWORD = "hunter2-store-password"
FIRST, SECOND = "first-admin-0123456789", "second-admin-0123456789"
HEALTH_BOUND_S = 2.0
"""The issue's bound: the API answers within a second or two while the store's lock is held."""


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[str, Path, Dispatcher]]:
    """API + dispatcher looping in a thread, on a SQLite file."""
    store = SqliteStore(tmp_path / "kf.db")
    store.add_token(ADMIN, "admin", admin=True)
    store.put_queue(QueueSpec("q", Resources(1000, 1024)))
    dispatcher = Dispatcher(store, LocalBackend(tmp_path / "launches", capacity=Resources(1000, 1024)), grace_s=2)
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    loop.start()
    with serving(SchedulerAPI(store, dispatcher, logs=dispatcher.backend.log_range)) as url:
        yield url, tmp_path / "kf.db", dispatcher
    stop.set()
    loop.join(timeout=30)
    store.close()


def _get(url: str, path: str, token: str = ADMIN) -> tuple[int, float, requests.Response]:
    began = time.monotonic()
    response = requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return response.status_code, time.monotonic() - began, response


def _hold_write_lock(database: Path, seconds: float, held: threading.Event) -> None:
    """Another process's writer: BEGIN IMMEDIATE and an insert, kept open for `seconds`."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO fair_share (team, history, updated_at) VALUES ('lock-holder', 0, 0)")
    held.set()
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    connection.close()


def _lock_drill(server: tuple[str, Path, Dispatcher], hold_s: float) -> None:
    url, database, _ = server
    with SchedulerClient(url, ADMIN) as client:
        before = client.submit({"queue": "q", "command": ["true"]})
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(database, hold_s, held))
        holder.start()
        held.wait()
        status, took, _ = _get(url, "/healthz")
        assert status == 200 and took < HEALTH_BOUND_S, (status, took)
        began = time.monotonic()
        refused = requests.post(
            f"{url}/v1/jobs", json={"queue": "q", "command": ["true"]}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert refused.status_code == 503 and time.monotonic() - began < HEALTH_BOUND_S
        assert refused.headers["Retry-After"] == "2" and "unavailable" in refused.json()["error"]
        status, took, listing = _get(url, "/v1/jobs")  # reads take no lock: they go on
        assert status == 200 and before in {job["id"] for job in listing.json()["jobs"]} and took < HEALTH_BOUND_S
        assert _get(url, "/readyz")[0] == 200
        holder.join()
        after = client.submit({"queue": "q", "command": ["true"]})
        deadline = time.monotonic() + 30
        while client.job(after)["state"] != "succeeded":  # scheduling resumed by itself
            assert time.monotonic() < deadline, client.job(after)
            time.sleep(0.05)
        assert client.job(before)["state"] == "succeeded"
        health = client.health()
    assert health["status"] == "ok" and health["dispatcher"]["alive"] and health["dispatcher"]["last_error"] == ""


def test_a_held_sqlite_write_lock_answers_503_fast_and_scheduling_resumes(
    sqlite_server: tuple[str, Path, Dispatcher],
) -> None:
    _lock_drill(sqlite_server, hold_s=4.0)


@pytest.mark.chaos
def test_a_sqlite_write_lock_held_20_s(sqlite_server: tuple[str, Path, Dispatcher]) -> None:
    _lock_drill(sqlite_server, hold_s=20.0)


def test_a_dead_postgresql_answers_503_without_its_password_and_recovers(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = postgres.create_database().rsplit("/", 1)[1]
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{postgres.port}/{name}"  # trust auth ignores it
    store = open_store(url)
    store.add_token(ADMIN, "admin", admin=True)
    assert PASSWORD not in repr(store)
    caplog.set_level(logging.DEBUG)
    with serving(SchedulerAPI(store)) as api, SchedulerClient(api, ADMIN) as client:
        assert client.jobs() == []
        with psycopg.connect(postgres.url(), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            answers = [
                _get(api, "/readyz"),
                _get(api, "/v1/jobs"),
                _get(api, "/v1/jobs", "never-seen-token-0123456789"),
            ]
            for status, took, response in answers:
                assert status == 503 and took < HEALTH_BOUND_S and response.headers["Retry-After"] == "2"
                assert PASSWORD not in response.text and "127.0.0.1" not in response.text
            assert _get(api, "/healthz")[0] == 200
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert _get(api, "/readyz")[0] == 200 and client.jobs() == []
    store.close()
    assert "store unavailable" in caplog.text and PASSWORD not in caplog.text


def test_store_urls_are_redacted_in_every_error() -> None:
    with pytest.raises(StoreUnavailable) as refused:
        open_store(f"postgresql://kf:{PASSWORD}@127.0.0.1:1/kf")
    assert PASSWORD not in str(refused.value) and PASSWORD not in refused.value.detail
    with pytest.raises(InputError) as unknown:
        open_store(f"mysql://kf:{PASSWORD}@db/kf")
    assert PASSWORD not in str(unknown.value) and "kf:***@db" in str(unknown.value)


def _serve(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m kubeforge.scheduler.serve` (API only) on a free port, once it listens or has exited."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--port", str(port), "--no-dispatch", *args]
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=30)
    return err.decode()


def test_the_store_url_comes_from_a_file_or_the_environment_and_never_argv_with_a_password(tmp_path: Path) -> None:
    refused, _ = _serve("--store", f"postgresql://kf:{PASSWORD}@127.0.0.1:1/kf", env={})
    assert refused.wait(timeout=30) != 0
    error = _stop(refused)
    assert "carries a password" in error and PASSWORD not in error
    database = tmp_path / "kf.db"
    (tmp_path / "store-url").write_text(f"sqlite:///{database}\n")
    first, url = _serve("--store-file", str(tmp_path / "store-url"), env={"KUBEFORGE_ADMIN_TOKEN": FIRST})
    with SchedulerClient(url, FIRST) as admin:
        admin.put_queue("q", {"cpu": 1, "memory": "1Gi"})
        kept = admin.create_token("ops", admin=True)  # made through the API: survives the rotation
    _stop(first)
    second, url = _serve(env={"KUBEFORGE_STORE_URL": f"sqlite:///{database}", "KUBEFORGE_ADMIN_TOKEN": SECOND})
    try:
        for token, works in ((FIRST, False), (SECOND, True), (kept, True)):
            assert (_get(url, "/v1/queues", token)[0] == 200) == works, token
        with SchedulerClient(url, kept) as ops:
            roles = sorted((info["team"], info["from_environment"]) for info in ops.tokens())
        assert roles == [("admin", True), ("ops", False)]
    finally:
        _stop(second)


def test_healthz_says_503_once_the_dispatcher_loop_has_died(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    dispatcher = Dispatcher(store, LocalBackend(tmp_path / "launches", capacity=Resources(1000, 1024)))
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    loop.start()
    with serving(SchedulerAPI(store, dispatcher)) as url:
        deadline = time.monotonic() + 30
        while (found := _get(url, "/healthz"))[2].json()["dispatcher"]["last_step_at"] is None:
            assert time.monotonic() < deadline, found[2].text
            time.sleep(0.05)
        assert found[0] == 200 and found[2].json()["dispatcher"]["alive"]
        stop.set()
        loop.join(timeout=30)
        status, _, response = _get(url, "/healthz")
    assert status == 503 and response.json()["status"] == "unhealthy" and not response.json()["dispatcher"]["alive"]
    store.close()
