"""What every launch backend shares: the job description, its handle, state and status, the protocol.

The scheduler's backends implement the same protocol for the scheduler's jobs: one handle type, one
state enum (`kubeforge.launch.state`), one resources type (`kubeforge.resources`) for both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import kubeforge
from kubeforge.errors import InputError
from kubeforge.launch.state import JobState
from kubeforge.launch.torchrun import torchrun_command
from kubeforge.resources import Resources
from kubeforge.training.config import TrainConfig
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE

MAX_REQUEUES = 20
"""Preemptions a job absorbs before it counts as failed (each one resumes from a checkpoint)."""
WORKER_RESOURCES = Resources(cpu_m=1000, memory_mb=2048)
"""What each worker asks for unless the job says otherwise: one core, 2 GiB, no gpu."""
GPU_TYPE = "nvidia.com/gpu"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class TrainingJob:
    """One distributed training job, backend-neutral.

    `name` is the idempotency key: submitting a job whose name already exists re-attaches
    to it. `nodes * nproc_per_node` processes run the worker, each asking for `resources`
    (its `gpu` counts devices of `gpu_type`, the platform's accelerator name); every backend
    spells that request its platform's way. `options` holds the backend-specific settings
    (namespace, queue, tolerations, machine type, partition...).
    """

    name: str
    config: TrainConfig
    nodes: int = 1
    nproc_per_node: int = 1
    image: str = kubeforge.IMAGE
    resources: Resources = WORKER_RESOURCES
    gpu_type: str = GPU_TYPE
    max_restarts: int = 0
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.name):
            raise InputError(
                f"job name {self.name!r}: use at most 63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        if self.nodes < 1 or self.nproc_per_node < 1:
            raise InputError(f"nodes ({self.nodes}) and nproc_per_node ({self.nproc_per_node}) must be at least 1")
        if self.max_restarts < 0:
            raise InputError(f"max_restarts is {self.max_restarts}; it must be 0 or more")

    @property
    def world_size(self) -> int:
        """Total number of worker processes."""
        return self.nodes * self.nproc_per_node

    @property
    def per_node(self) -> Resources:
        """What one node asks for: its `nproc_per_node` workers' resources together."""
        return self.resources.times(self.nproc_per_node)

    def worker_command(self) -> list[str]:
        """The container command every node runs (the platform supplies the rendezvous)."""
        return torchrun_command(
            ["--config-json", self.config.to_json(indent=None)], self.nproc_per_node, self.max_restarts
        )


@dataclass(frozen=True)
class JobHandle:
    """What a backend needs to find a job again after the launcher restarts."""

    backend: str
    name: str
    id: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The handle as JSON, written before the launcher waits."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobHandle:
        """Rebuild a handle written by `to_json`."""
        return cls(**json.loads(text))


def state_of_exit_code(code: int) -> JobState:
    """How every backend reads a launch's exit code: 0 succeeded; PREEMPTED_EXIT_CODE preempted (it
    checkpointed on SIGTERM: requeue it and it resumes); anything else failed."""
    if code == 0:
        return JobState.SUCCEEDED
    return JobState.PREEMPTED if code == PREEMPTED_EXIT_CODE else JobState.FAILED


@dataclass(frozen=True)
class JobStatus:
    """A job's state plus the backend's own words about it (the failure reason, say)."""

    state: JobState
    message: str = ""


JobT_contra = TypeVar("JobT_contra", contravariant=True)
"""What a backend launches: a `TrainingJob` for the training backends, the scheduler's job for its backends."""


class LaunchBackend(Protocol[JobT_contra]):
    """The one protocol every backend implements: the training backends of this package
    (`LaunchBackend[TrainingJob]`) and the scheduler's backends, which extend it for gangs
    (`kubeforge.scheduler.backends.base.Backend`, a `LaunchBackend` of the scheduler's jobs)."""

    name: ClassVar[str]

    def submit(self, job: JobT_contra) -> JobHandle:
        """Create the job, or return the handle of the existing job with the same name."""
        ...

    def status(self, handle: JobHandle) -> JobStatus:
        """The job's current state."""
        ...

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """The lead worker's log lines so far."""
        ...

    def cancel(self, handle: JobHandle) -> None:
        """Stop the job and release what it holds."""
        ...

    def suspend(self, handle: JobHandle) -> None:
        """Ask the job to checkpoint and stop (SIGTERM, or the platform's suspend); it resumes when requeued."""
        ...


__all__ = [
    "GPU_TYPE",
    "MAX_REQUEUES",
    "WORKER_RESOURCES",
    "JobHandle",
    "JobState",
    "JobStatus",
    "LaunchBackend",
    "TrainingJob",
    "state_of_exit_code",
]
