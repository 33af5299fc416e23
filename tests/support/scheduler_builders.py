"""Small builders for scheduler tests: jobs, queues and a scheduler with an injected clock."""

from __future__ import annotations

import itertools
from typing import Any

from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import Backend
from kubeforge.scheduler.model import Job, JobSpec, QueueSpec
from kubeforge.scheduler.scheduler import Scheduler

_IDS = itertools.count(1)


def res(cpu: float = 0, memory: int = 0, gpu: int = 0) -> Resources:
    """Resources from cores, MiB and gpus."""
    return Resources(round(cpu * 1000), memory, gpu)


def launch_output(backend: Backend, stored: str, key: str = "") -> str:
    """A launch's whole output through the launch protocol's `logs`, its handle rebuilt from the text
    the store keeps (`stored`) and its launch key (for the local backend, the same text)."""
    return "".join(backend.logs(JobHandle(backend.name, key or stored, stored)))


def queue(name: str, cpu: float, cohort: str = "", borrow: float = 0, gpu: int = 0) -> QueueSpec:
    """A queue with `cpu` cores (and plenty of memory) of nominal quota."""
    return QueueSpec(name, res(cpu, 1 << 20, gpu), cohort, res(borrow, 1 << 20, gpu))


def job(
    queue_name: str = "q",
    cpu: float = 1,
    workers: int = 1,
    team: str = "t",
    created: float = 0.0,
    job_id: int | None = None,
    **fields: Any,
) -> Job:
    """A pending command job of `workers` workers with `cpu` cores each."""
    spec = JobSpec(team=team, queue=queue_name, command=("true",), resources=res(cpu, 1), workers=workers, **fields)
    return Job(id=job_id if job_id is not None else next(_IDS), spec=spec, created_at=created)


def scheduler(cpu: float, *queues: QueueSpec, **options: Any) -> Scheduler:
    """A scheduler over a machine of `cpu` cores."""
    return Scheduler(res(cpu, 1 << 22, 8), queues, **options)


__all__ = ["job", "queue", "res", "scheduler"]
