"""The SLURM backend runs real jobs on a one-node SLURM cluster started by the `slurm` fixture."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from scheduler_builders import launch_output
from slurm_cluster import SlurmCluster

from kubeforge.launch.base import JobStatus
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import stored_handle
from kubeforge.scheduler.backends.slurm import SlurmBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore


def test_slurm_runs_gangs_reports_exit_codes_and_resubmits_nothing(slurm: SlurmCluster, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    backend = SlurmBackend(tmp_path / "slurm", capacity=Resources(2000, 4096))
    dispatcher = Dispatcher(store, backend, grace_s=2)
    dispatcher.start()
    now = time.time()
    gang = store.submit(
        JobSpec("t", "q", ("sh", "-c", "echo rank-$SLURM_PROCID"), resources=Resources(500, 64), workers=2), now
    )
    failing = store.submit(JobSpec("t", "q", ("sh", "-c", "exit 4"), resources=Resources(500, 64)), now)
    dispatcher.step()
    first = store.get(gang)
    assert first is not None and first.state is JobState.RUNNING
    # a repeated launch finds the job instead of submitting again; its handle is the one the store's text rebuilds
    assert backend.submit(first) == stored_handle(backend.name, first)
    deadline = time.monotonic() + 60
    while any(
        store.get(i).state is not JobState.SUCCEEDED and not store.get(i).state.terminal for i in (gang, failing)
    ):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, [store.get(i) for i in (gang, failing)]
        dispatcher.step()
        time.sleep(0.2)
    done = store.get(gang)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert sorted(launch_output(backend, done.handle, done.launch_key).split()) == ["rank-0", "rank-1"]
    failed = store.get(failing)
    assert failed is not None and failed.state is JobState.FAILED and failed.exit_code == 4
    assert backend.status(stored_handle(backend.name, done)).state is JobState.SUCCEEDED
    assert backend.status(stored_handle(backend.name, failed)) == JobStatus(JobState.FAILED, "exit code 4")
    store.close()


def test_slurm_jobs_see_only_their_own_environment(
    slurm: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--export` lists the allowlist only: the scheduler's secrets reach neither the batch script nor its
    steps, and a job's own variables (even one holding `,ALL`) arrive intact, in every rank."""
    monkeypatch.setenv("KUBEFORGE_ADMIN_TOKEN", "admin-secret-0123456789")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    backend = SlurmBackend(tmp_path / "slurm", capacity=Resources(2000, 4096))
    dispatcher = Dispatcher(store, backend, grace_s=2)
    dispatcher.start()
    show = "echo rank-$SLURM_PROCID $MINE $KUBEFORGE_JOB_ID leaked=$(env | grep -c -e admin-secret -e aws-secret)"
    spec = JobSpec("t", "q", ("sh", "-c", show), resources=Resources(500, 64), workers=2, env={"MINE": "a,ALL"})
    job_id = store.submit(spec, time.time())
    deadline = time.monotonic() + 60
    while not (job := store.get(job_id)) or not job.state.terminal:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, job
        dispatcher.step()
        time.sleep(0.2)
    assert job.state is JobState.SUCCEEDED, job.reason
    lines = sorted(launch_output(backend, job.handle, job.launch_key).split())
    assert " ".join(lines) == f"{job_id} {job_id} a,ALL a,ALL leaked=0 leaked=0 rank-0 rank-1", lines
    store.close()
