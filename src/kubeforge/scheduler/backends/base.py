"""The scheduler's backends: launch backends (`kubeforge.launch.base.LaunchBackend`) of its jobs, and how a
job becomes a command.

A scheduler backend implements the one launch protocol (submit, status, logs, cancel, suspend over a
`JobHandle`) for the scheduler's `Job`, extended (`Backend`) with what the scheduler needs for gangs
at scale: one `poll` of every running launch, byte ranges of a log, a failure's reason, the capacity.
A training spec runs the launch layer's torchrun command, the job's per-worker `Resources` is the
launch layer's request as it is, and an exit code reads as the one `JobState` through
`kubeforge.launch.base.state_of_exit_code`.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from kubeforge.errors import InputError
from kubeforge.launch.base import JobHandle, JobState, JobStatus, LaunchBackend, state_of_exit_code
from kubeforge.launch.torchrun import STANDALONE, torchrun_command
from kubeforge.resources import Resources
from kubeforge.scheduler.logs import MAX_LOG_BYTES, LogSlice
from kubeforge.scheduler.model import Job
from kubeforge.training.config import TrainConfig

LOST_EXIT_CODE = -1
"""Reported for a launch that ended without recording an exit code (killed, or vanished)."""
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")
"""The only variables of the scheduler's own environment a job sees (when they are set there);
everything else a job sees comes from its spec and its identity: secrets never leak into jobs."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class Backend(LaunchBackend[Job], Protocol):
    """Where admitted jobs run: the launch protocol over the scheduler's jobs, extended for gangs at scale.

    `submit` is idempotent by `job.launch_key`, the handle's `name`; the handle's `id` is the text the
    store keeps for the launch (`job.handle`), unchanged from what the scheduler stored before the
    handle was typed, and `stored_handle` rebuilds the handle from it. The extensions take that text:
    `poll` reads every running launch in one call each cycle without building a handle per launch,
    and the API reads `log_range` and `reason` by what the store holds.
    """

    capacity: Resources

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        """Exit codes of the launches (job id -> handle id) that have ended; running ones are left out."""
        ...

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        """At most `limit` bytes of the launch's output from `offset` (None: its tail), never all of it in memory."""
        ...

    def reason(self, handle: str) -> str:
        """Why an ended launch failed, when the backend knows more than its exit code; '' otherwise."""
        ...


class PolledLaunch:
    """The launch protocol's `status` and `logs` of a scheduler backend, read through its `poll` and `log_range`."""

    def status(self: Backend, handle: JobHandle) -> JobStatus:
        """RUNNING until the launch has ended, then its exit code's state, with the backend's reason if it failed."""
        code = self.poll({0: handle.id}).get(0)
        if code is None:
            return JobStatus(JobState.RUNNING)
        state = state_of_exit_code(code)
        return JobStatus(state, "" if state is JobState.SUCCEEDED else self.reason(handle.id) or f"exit code {code}")

    def logs(self: Backend, handle: JobHandle) -> Iterator[str]:
        """The launch's output so far, line by line, read a page of MAX_LOG_BYTES at a time."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset, partial = 0, ""
        while True:
            page = self.log_range(handle.id, offset, MAX_LOG_BYTES)
            lines = (partial + decoder.decode(page.data, final=not page.data)).splitlines(keepends=True)
            partial = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            yield from lines
            if not page.data:
                if partial:
                    yield partial
                return
            offset = page.start + len(page.data)


def stored_handle(backend: str, job: Job) -> JobHandle:
    """The handle of the job's current launch on `backend`, rebuilt from the text the store keeps (`job.handle`)."""
    return JobHandle(backend, job.launch_key, job.handle)


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
    "PolledLaunch",
    "job_command",
    "job_environment",
    "passthrough_environment",
    "stored_handle",
    "training_config",
]
