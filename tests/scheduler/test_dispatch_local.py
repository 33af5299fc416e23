"""The dispatcher against SQLite and PostgreSQL and the local backend, running real processes."""

from __future__ import annotations

import time
from pathlib import Path

from scheduler_builders import launch_output

from kubeforge.resources import Resources
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store import SqlStore, open_store


def _run_until_done(dispatcher: Dispatcher, store: SqlStore, ids: list[int], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dispatcher.step()
        if all(store.get(job_id).state.terminal for job_id in ids):  # type: ignore[union-attr]
            return
        time.sleep(0.02)
    raise AssertionError(f"jobs not finished: {[store.get(job_id) for job_id in ids]}")


def test_jobs_run_retry_and_report_exit_codes(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    backend = LocalBackend(tmp_path / "launches", capacity=Resources(2000, 4096))
    dispatcher = Dispatcher(store, backend, grace_s=2)
    dispatcher.start()
    marker = tmp_path / "attempts"
    ok = store.submit(JobSpec("t", "q", ("sh", "-c", "echo hello; echo $RANK >> ranks"), workers=2), time.time())
    flaky = store.submit(
        JobSpec("t", "q", ("sh", "-c", f"echo x >> {marker}; [ $(wc -l < {marker}) -ge 2 ]"), retries=2, backoff_s=0.1),
        time.time(),
    )
    failing = store.submit(JobSpec("t", "q", ("sh", "-c", "exit 3")), time.time())
    _run_until_done(dispatcher, store, [ok, flaky, failing])
    assert store.get(ok).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert "hello" in launch_output(backend, f"kf-{ok}-0")
    flaky_job = store.get(flaky)
    assert flaky_job is not None and flaky_job.state is JobState.SUCCEEDED and flaky_job.attempt == 1
    failed_job = store.get(failing)
    assert failed_job is not None and failed_job.state is JobState.FAILED and failed_job.exit_code == 3
    store.close()


def test_cancel_running_job_sends_sigterm(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    backend = LocalBackend(tmp_path / "launches", capacity=Resources(2000, 4096))
    dispatcher = Dispatcher(store, backend, grace_s=5)
    dispatcher.start()
    trap = "trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 0.05; done"
    job_id = store.submit(JobSpec("t", "q", ("sh", "-c", trap)), time.time())
    deadline = time.monotonic() + 10
    while "started" not in launch_output(backend, f"kf-{job_id}-0") and time.monotonic() < deadline:
        dispatcher.step()
        time.sleep(0.02)
    assert store.request_cancel(job_id)
    _run_until_done(dispatcher, store, [job_id])
    assert store.get(job_id).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert "got-term" in launch_output(backend, f"kf-{job_id}-0")
    store.close()
