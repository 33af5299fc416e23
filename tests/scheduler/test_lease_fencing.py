"""The PostgreSQL lease is fenced: a dispatcher whose lease session dies stops writing the moment
another takes over, and dispatchers ride out lease losses and database restarts by themselves.

Chaos: two real dispatcher processes share one PostgreSQL database and one local supervisor;
the lease holder's session is terminated with `pg_terminate_backend` while jobs keep arriving
(twenty times with `make test-chaos`, five in the default lane). Every job must run exactly
once and succeed. Then PostgreSQL itself is restarted under load and the lone dispatcher
must resume without help.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from postgres_server import PostgresServer, running_postgres

from kubeforge.resources import Resources
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store.base import LeaseLostError, StoreUnavailable
from kubeforge.scheduler.store.postgres import LEASE_KEY, PostgresStore

TERMINATIONS = 20
"""The full drill (`make test-chaos`); the default lane runs a short one."""
_T = TypeVar("_T")


def _lease_holder(server: PostgresServer, database: str) -> int | None:
    """The backend pid holding the dispatcher lease of `database`, or None."""
    with psycopg.connect(server.url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (database, LEASE_KEY >> 32, LEASE_KEY & 0xFFFFFFFF),
        ).fetchone()
    return int(row[0]) if row else None


def _terminate(server: PostgresServer, pid: int) -> None:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _retrying(call: Callable[[], _T], timeout_s: float = 30.0) -> _T:
    """`call()`, retried while the store is unavailable (a restart in progress)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_deposed_dispatcher_cannot_write(postgres: PostgresServer) -> None:
    """Split brain closed: once a standby takes over, every write of the old holder is refused."""
    url = postgres.create_database()
    database = url.rsplit("/", 1)[1]
    first, second = PostgresStore(url), PostgresStore(url)
    first.put_queue(QueueSpec("q", Resources(1000, 1024)))
    job_id = first.submit(JobSpec("t", "q", ("true",)), time.time())
    assert first.acquire_lease() and not second.acquire_lease()
    held = first.lease_generation
    assert held is not None and [job.id for job in first.claim_inbox()] == [job_id]
    holder = _lease_holder(postgres, database)
    assert holder is not None
    _terminate(postgres, holder)
    deadline = time.monotonic() + 10
    while not second.acquire_lease():
        assert time.monotonic() < deadline, "the standby never got the lease"
        time.sleep(0.05)
    assert second.lease_generation == held + 1
    job = second.get(job_id)
    assert job is not None
    job.state, job.reason = JobState.FAILED, "written by the deposed dispatcher"
    with pytest.raises(LeaseLostError, match="another dispatcher is active"):
        first.save([job])
    with pytest.raises(LeaseLostError):
        first.claim_inbox()
    stored = second.get(job_id)
    assert stored is not None and stored.state is JobState.PENDING
    assert first.lease_lost() and not second.lease_lost()
    first.close()
    second.close()


@contextmanager
def _dispatchers(url: str, state: Path, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--store", url, "--no-api"]
    command += ["--state-dir", str(state), "--cpu", "2", "--memory", "4Gi", "--grace-s", "2"]
    logs = [open(state.parent / f"dispatcher-{index}.log", "wb") for index in range(count)]  # noqa: SIM115
    processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process, log in zip(processes, logs, strict=True):
            process.wait(timeout=30)
            log.close()


def _submit(store: PostgresStore, runs: Path, count: int) -> list[int]:
    command = ("sh", "-c", f'echo "$KUBEFORGE_JOB_ID" >> {runs}; sleep 0.1')
    spec = JobSpec("t", "q", command, resources=Resources(200, 16))
    return _retrying(lambda: store.submit_many([spec] * count, time.time()))


def _wait_all_done(store: PostgresStore, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _retrying(lambda: list(store.active_jobs())):
        assert time.monotonic() < deadline, "jobs still unfinished"
        time.sleep(0.2)


def _runs(store: PostgresStore, ids: list[int], runs: Path) -> tuple[int, int]:
    """(jobs launched more than once, jobs lost: never ran or did not succeed)."""
    counts = Counter(int(line) for line in runs.read_text().split())
    jobs = [store.get(job_id) for job_id in ids]
    failed = [job for job in jobs if job is None or job.state is not JobState.SUCCEEDED]
    return sum(1 for n in counts.values() if n > 1), len(set(ids) - set(counts)) + len(failed)


@pytest.mark.parametrize(
    "terminations", [pytest.param(5, id="5"), pytest.param(TERMINATIONS, id="20", marks=pytest.mark.chaos)]
)
def test_lease_terminations_launch_nothing_twice_and_lose_nothing(
    postgres: PostgresServer, tmp_path: Path, terminations: int
) -> None:
    url = postgres.create_database()
    database = url.rsplit("/", 1)[1]
    store = PostgresStore(url)
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    state, runs = tmp_path / "state", tmp_path / "runs.log"
    state.mkdir()
    ids = _submit(store, runs, 40)
    rng = random.Random(12)
    terminated = 0
    with _dispatchers(url, state, 2) as processes:
        while terminated < terminations:
            deadline = time.monotonic() + 15
            while (holder := _lease_holder(postgres, database)) is None:
                assert time.monotonic() < deadline, "no dispatcher took the lease"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 0.5))  # let it dispatch a little
            _terminate(postgres, holder)
            terminated += 1
            ids += _submit(store, runs, 10)
            assert all(process.poll() is None for process in processes), "a dispatcher exited"
        _wait_all_done(store)
    duplicates, lost = _runs(store, ids, runs)
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT generation FROM dispatcher_lease").fetchone()
    generation = int(row[0]) if row else 0
    print(
        f"lease chaos: {terminated} terminations, {generation} lease generations, "
        f"{len(ids)} jobs, {duplicates} launched twice, {lost} lost"
    )
    logs = [(tmp_path / f"dispatcher-{index}.log").read_text()[-2000:] for index in (0, 1)]
    assert (duplicates, lost) == (0, 0), logs
    assert generation > terminations  # every termination handed the lease on
    store.close()


def test_the_dispatcher_resumes_by_itself_after_a_database_restart(tmp_path: Path) -> None:
    with running_postgres() as server:
        url = server.create_database()
        store = PostgresStore(url)
        store.put_queue(QueueSpec("q", Resources(2000, 4096)))
        state, runs = tmp_path / "state", tmp_path / "runs.log"
        state.mkdir()
        ids = _submit(store, runs, 60)
        with _dispatchers(url, state, 1) as (process,):
            deadline = time.monotonic() + 30
            while not runs.exists() or len(runs.read_text().split()) < 10:
                assert time.monotonic() < deadline, "nothing ran before the restart"
                time.sleep(0.05)
            server.restart(down_s=1.0)
            ids += _submit(store, runs, 20)
            _wait_all_done(store)
            assert process.poll() is None, "the dispatcher exited"
        duplicates, lost = _runs(store, ids, runs)
        print(f"database restart: {len(ids)} jobs, {duplicates} launched twice, {lost} lost")
        assert (duplicates, lost) == (0, 0)
        store.close()
