"""The small protocol every scheduler backend implements, and how a job becomes a command."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import ClassVar, Protocol

from kubeforge.errors import InputError
from kubeforge.scheduler.model import Job
from kubeforge.scheduler.resources import Resources

LOST_EXIT_CODE = -1
"""Reported for a launch that ended without recording an exit code (killed, or vanished)."""


class Backend(Protocol):
    """Where admitted jobs run. `submit` is idempotent by `job.launch_key`: one key launches once."""

    name: ClassVar[str]
    capacity: Resources

    def submit(self, job: Job) -> str:
        """Launch the job's gang, or find the launch with the same key; returns its handle."""
        ...

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        """Exit codes of the launches (job id -> handle) that have ended; running ones are left out."""
        ...

    def suspend(self, handle: str) -> None:
        """Ask the launch to stop (SIGTERM, or the platform's suspend); it may checkpoint first."""
        ...

    def cancel(self, handle: str) -> None:
        """Stop the launch now."""
        ...

    def logs(self, handle: str) -> str:
        """The launch's output so far."""
        ...


def job_command(job: Job, nproc_per_node: int | None = None) -> list[str]:
    """The command one node runs: the job's own command, or torchrun around the kubeforge worker."""
    if job.spec.command:
        return list(job.spec.command)
    if job.spec.training is None:
        raise InputError(f"job {job.id}: it has neither a command nor a training spec")
    from kubeforge.training.config import TrainConfig

    config = TrainConfig.from_json(json.dumps(dict(job.spec.training)))
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # one node: a private rendezvous, so concurrent jobs never share a port
        "--nnodes=1",
        f"--nproc-per-node={nproc_per_node or job.spec.workers}",
        "--monitor-interval=0.5",
        "-m",
        "kubeforge.training.worker",
        "--config-json",
        config.to_json(indent=None),
    ]


def job_environment(job: Job) -> dict[str, str]:
    """Variables every launch sees: the job's own plus its identity (and, for an array task, its array and index)."""
    environment = {
        **job.spec.env,
        "KUBEFORGE_JOB_ID": str(job.id),
        "KUBEFORGE_ATTEMPT": str(job.attempt),
        "KUBEFORGE_LAUNCH_KEY": job.launch_key,
        "KUBEFORGE_WORKERS": str(job.spec.workers),
    }
    if job.array_id is not None:
        environment["KUBEFORGE_ARRAY_JOB_ID"] = str(job.array_id)
        environment["KUBEFORGE_ARRAY_TASK_ID"] = str(job.array_index)
    return environment


__all__ = ["LOST_EXIT_CODE", "Backend", "job_command", "job_environment"]
