"""The one state enum of a job, for the launch layer and the scheduler alike (no imports: both read it).

A launch backend reports where one launch of a job is (pending, running, an end); the scheduler
records where a job is across its launches, adding the two steps only it takes (admitted: the
launch is in flight; stopping: it asked the launch to stop). The values are the strings the
scheduler's store keeps, so they never change. The scheduler never stores PREEMPTED: a launch that
ends preempted is requeued (the job goes back to PENDING) and resumes from its checkpoint.
"""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """Where a job is: a launch's state on its backend, or a queued job's state in the scheduler."""

    PENDING = "pending"
    ADMITTED = "admitted"
    """Scheduler only: admitted and recorded before the backend launch (the launch is in flight)."""
    RUNNING = "running"
    STOPPING = "stopping"
    """Scheduler only: asked to stop (preempted or cancelled); its workers still hold their resources."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    """Launch only: stopped by SIGTERM after checkpointing (exit code PREEMPTED_EXIT_CODE); requeue it to resume."""

    @property
    def terminal(self) -> bool:
        """True once the job (or this launch of it) will not change state again."""
        return self in _TERMINAL

    @property
    def live(self) -> bool:
        """True while the job is queued, starting, running or stopping: a re-run launcher attaches to it."""
        return self not in _TERMINAL

    @property
    def holds_resources(self) -> bool:
        """True while the job's workers occupy the scheduler's quota and capacity."""
        return self in _HOLDING


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED})
_HOLDING = frozenset({JobState.ADMITTED, JobState.RUNNING, JobState.STOPPING})

__all__ = ["JobState"]
