"""The small protocol every scheduler backend implements, and how a job becomes a command.

The scheduler's backends are adapters onto the launch layer (`kubeforge.launch`): a training spec
runs the launch layer's torchrun command, a per-worker amount becomes its resources request in
`worker_resources`, and an exit code reads as its state through `kubeforge.launch.base.state_of_exit_code`.
They keep their own protocol because the scheduler launches gangs by launch key and polls many at once.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import ClassVar, Protocol

from kubeforge.errors import InputError
from kubeforge.launch.torchrun import STANDALONE, torchrun_command
from kubeforge.scheduler.logs import LogSlice
from kubeforge.scheduler.model import Job
from kubeforge.scheduler.resources import Resources
from kubeforge.training.config import TrainConfig

LOST_EXIT_CODE = -1
"""Reported for a launch that ended without recording an exit code (killed, or vanished)."""
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")
"""The only variables of the scheduler's own environment a job sees (when they are set there);
everything else a job sees comes from its spec and its identity: secrets never leak into jobs."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


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

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        """At most `limit` bytes of the launch's output from `offset` (None: its tail), never all of it in memory."""
        ...

    def reason(self, handle: str) -> str:
        """Why an ended launch failed, when the backend knows more than its exit code; '' otherwise."""
        ...


def job_command(job: Job, nproc_per_node: int | None = None) -> list[str]:
    """The command one node runs: the job's own command, or the launch layer's torchrun command (one
    node, a private rendezvous) around the kubeforge worker, which turns SIGTERM into a checkpoint."""
    if job.spec.command:
        return list(job.spec.command)
    if job.spec.training is None:
        raise InputError(f"job {job.id}: it has neither a command nor a training spec")
    config = ["--config-json", training_config(job).to_json(indent=None)]
    return torchrun_command(config, nproc_per_node or job.spec.workers, rendezvous=STANDALONE, python=sys.executable)


def training_config(job: Job) -> TrainConfig:
    """The job's training spec as a TrainConfig; a spec the engine cannot take raises InputError naming the field."""
    try:
        return TrainConfig.from_dict(dict(job.spec.training or {}), prefix="training.")
    except (TypeError, ValueError) as exc:  # a check of the engine's own, past the field checks
        raise InputError(f"training: {exc}") from None


def job_environment(job: Job) -> dict[str, str]:
    """Variables every launch sees: the job's own plus its identity (and, for an array task, its array and index).

    Only these: a backend adds at most `passthrough_environment()`, never its own environment.
    A name that is not a shell identifier, or a value holding a NUL byte, raises InputError.
    """
    for name, value in job.spec.env.items():
        if not _ENV_NAME.match(name) or "\0" in value:
            raise InputError(
                f"env: {name!r} is not a valid variable (names: letters, digits and '_', not starting with a digit; "
                "values without NUL bytes)"
            )
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


def passthrough_environment(names: Iterable[str] = PASSTHROUGH_ENV) -> dict[str, str]:
    """The allowlisted variables of this process's environment that are set (jobs on this machine get them)."""
    return {name: os.environ[name] for name in names if name in os.environ}


__all__ = [
    "LOST_EXIT_CODE",
    "PASSTHROUGH_ENV",
    "Backend",
    "job_command",
    "job_environment",
    "passthrough_environment",
    "training_config",
]
