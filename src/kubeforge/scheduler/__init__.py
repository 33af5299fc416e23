"""A scheduler for queued training jobs: priorities, quotas, borrowing, fair share, gangs,
backfill, preemption and retries, with durable state and pluggable backends.

Three parts after Kueue: `queues` (pending jobs per queue), `cache` (capacity, quotas,
usage) and `scheduler` (the cycle); `dispatcher` drives them against a store and a backend.
"""

from __future__ import annotations

from kubeforge.resources import Resources
from kubeforge.scheduler.model import PRIORITY_CLASSES, Job, JobSpec, JobState, QueueSpec, Reason
from kubeforge.scheduler.scheduler import CycleResult, Scheduler

__all__ = [
    "PRIORITY_CLASSES",
    "CycleResult",
    "Job",
    "JobSpec",
    "JobState",
    "QueueSpec",
    "Reason",
    "Resources",
    "Scheduler",
]
