"""Failures stay where they start: a job that cannot run fails alone, a failing step is retried,
a stopping job without a launch frees its quota, backend calls never hold the dispatcher's lock,
and no job ever sees the scheduler's admin token. Real SQLite, real supervisor, real server.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scheduler_builders import launch_output

from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore
from kubeforge.scheduler_client import SchedulerClient

CAPACITY = Resources(2000, 4096)
ADMIN = "admin-token-never-in-a-job-0123456789"


@contextmanager
def _running(dispatcher: Dispatcher) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=30)


def _wait(store: SqliteStore, job_id: int, timeout_s: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while (job := store.get(job_id)) is None or not job.state.terminal:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_training_spec_the_engine_refuses_fails_that_job_and_nothing_else(tmp_path: Path) -> None:
    """Written straight into the store (the API would refuse it at submit), it must not stop dispatching."""
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    dispatcher = Dispatcher(store, LocalBackend(tmp_path / "launches", capacity=CAPACITY))
    now = time.time()
    bogus = store.submit(JobSpec("t", "q", training={"bogus": 1}, retries=3), now)
    bad_env = store.submit(JobSpec("t", "q", ("true",), env={"NOT A NAME": "x"}), now)
    fine = store.submit(JobSpec("t", "q", ("sh", "-c", "echo fine")), now)
    with _running(dispatcher) as thread:
        assert _wait(store, fine).state is JobState.SUCCEEDED
        refused, env_refused = _wait(store, bogus), _wait(store, bad_env)
        later = store.submit(JobSpec("t", "q", ("true",)), time.time())
        assert _wait(store, later).state is JobState.SUCCEEDED
        assert thread.is_alive() and dispatcher.alive and dispatcher.leader
    assert refused.state is JobState.FAILED and "training" in refused.reason and "bogus" in refused.reason
    assert refused.attempt == 0  # a spec that can never launch is not retried
    assert env_refused.state is JobState.FAILED and "NOT A NAME" in env_refused.reason
    assert not dispatcher.alive
    store.close()


def test_a_failing_step_is_retried_until_the_store_answers_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    dispatcher = Dispatcher(store, LocalBackend(tmp_path / "launches", capacity=CAPACITY))
    with _running(dispatcher) as thread:
        first = store.submit(JobSpec("t", "q", ("true",)), time.time())
        assert _wait(store, first).state is JobState.SUCCEEDED
        queued = store.submit(JobSpec("t", "q", ("true",)), time.time())
        holder = sqlite3.connect(tmp_path / "kf.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # nobody reads or writes the store for a while
        deadline = time.monotonic() + 20
        while not dispatcher.last_error:
            assert time.monotonic() < deadline, "the dispatcher never noticed the locked store"
            time.sleep(0.05)
        assert thread.is_alive() and dispatcher.alive
        holder.execute("ROLLBACK")
        holder.close()
        assert _wait(store, queued).state is JobState.SUCCEEDED
        deadline = time.monotonic() + 20
        while dispatcher.last_error:
            assert time.monotonic() < deadline, dispatcher.last_error
            time.sleep(0.05)
        assert dispatcher.leader and dispatcher.last_step_at is not None
    store.close()


def test_a_stopping_job_that_was_never_launched_ends_and_frees_its_quota(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    now = time.time()
    stuck_id = store.submit(JobSpec("t", "q", ("sleep", "60"), resources=CAPACITY), now)
    stuck = store.get(stuck_id)
    assert stuck is not None
    stuck.state, stuck.reason, stuck.admitted_at = JobState.STOPPING, "cancelled", now  # as a crash could leave it
    store.save([stuck])
    store.request_cancel(stuck_id)
    waiting = store.submit(JobSpec("t", "q", ("true",), resources=CAPACITY), now)
    dispatcher = Dispatcher(store, LocalBackend(tmp_path / "launches", capacity=CAPACITY))
    with _running(dispatcher):
        assert _wait(store, waiting).state is JobState.SUCCEEDED
    assert _wait(store, stuck_id).state is JobState.CANCELLED
    store.close()


class _LockWatchingBackend(LocalBackend):
    """The real local backend, noting whether the dispatcher's lock is held whenever it is called."""

    dispatcher: Dispatcher
    held: list[tuple[str, bool]]

    def submit(self, job: Job) -> JobHandle:
        self.held.append(("submit", self.dispatcher.lock.locked()))
        return super().submit(job)

    def poll(self, handles: dict[int, str]) -> dict[int, int]:  # type: ignore[override]
        self.held.append(("poll", self.dispatcher.lock.locked()))
        return super().poll(handles)

    def suspend(self, handle: JobHandle) -> None:
        self.held.append(("suspend", self.dispatcher.lock.locked()))
        super().suspend(handle)


def test_backend_calls_never_hold_the_dispatcher_lock(tmp_path: Path) -> None:
    """A slow backend (sbatch, the Kubernetes API) must not block position estimates in the API."""
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    backend = _LockWatchingBackend(tmp_path / "launches", capacity=CAPACITY)
    dispatcher = backend.dispatcher = Dispatcher(store, backend, grace_s=5)
    backend.held = []
    dispatcher.start()
    trap = "trap 'exit 0' TERM; echo up; while true; do sleep 0.05; done"
    job_id = store.submit(JobSpec("t", "q", ("sh", "-c", trap)), time.time())
    deadline = time.monotonic() + 10
    while "up" not in launch_output(backend, f"kf-{job_id}-0"):
        assert time.monotonic() < deadline
        dispatcher.step()
        time.sleep(0.02)
    store.request_cancel(job_id)
    while not (job := store.get(job_id)) or not job.state.terminal:  # type: ignore[union-attr]
        assert time.monotonic() < deadline + 10
        dispatcher.step()
        time.sleep(0.02)
    calls = {name for name, _ in backend.held}
    assert calls == {"submit", "poll", "suspend"} and not any(locked for _, locked in backend.held), backend.held
    store.close()


def test_jobs_submitted_through_the_server_never_see_the_admin_token(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--store", f"sqlite:///{tmp_path / 'kf.db'}"]
    command += ["--port", str(port), "--state-dir", str(tmp_path / "state"), "--cpu", "1", "--memory", "1Gi"]
    server = subprocess.Popen(
        command, env={**os.environ, "KUBEFORGE_ADMIN_TOKEN": ADMIN}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr and server.stderr.read()
                time.sleep(0.1)
        with SchedulerClient(url, ADMIN) as admin:
            admin.put_queue("q", {"cpu": 1, "memory": "1Gi"})
            token = admin.create_token("eve")
        with SchedulerClient(url, token) as eve:
            # the job looks everywhere it can: its environment and its parent's (the supervisor)
            show = "env; tr '\\0' '\\n' < /proc/$PPID/environ"
            job_id = eve.submit({"queue": "q", "command": ["sh", "-c", show], "env": {"MINE": "yes"}})
            while (state := eve.job(job_id)["state"]) not in ("succeeded", "failed"):
                assert time.monotonic() < deadline + 60, state
                time.sleep(0.1)
            seen = eve.logs(job_id)
        assert state == "succeeded" and "MINE=yes" in seen and f"KUBEFORGE_JOB_ID={job_id}" in seen
        assert ADMIN not in seen and "KUBEFORGE_ADMIN_TOKEN" not in seen
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr:
            server.stderr.close()
