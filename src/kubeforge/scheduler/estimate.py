"""Where a pending job stands: its position in its queue and an estimated start time.

The estimate replays the queue in order against the running jobs' latest ends (admission
plus maximum runtime), so it is an upper bound when jobs finish early, and it ignores
other queues' future submissions. `EstimateInput.take` copies what the replay needs from
the scheduler (a snapshot, under the dispatcher's lock and without sorting); `replay`
runs on that copy, outside the lock, so an API request never holds up the dispatcher.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from kubeforge.resources import Resources
from kubeforge.scheduler.model import Job
from kubeforge.scheduler.scheduler import Scheduler

MAX_REPLAYED = 10_000


@dataclass(frozen=True)
class Estimate:
    """Position 1 is next in the queue; `start` is a Unix time, None when the job can never fit."""

    position: int
    start: float | None
    reason: str = ""
    """Why the job waits, as the dispatcher last decided (the store keeps it only when a job is requeued)."""


@dataclass(frozen=True)
class EstimateInput:
    """A copy of the scheduler state one job's estimate reads."""

    job: Job
    ahead: list[Job]
    limit: Resources | None
    """The most the job's queue may hold, or None when the queue does not exist."""
    free: Resources
    queue_used: Resources
    events: list[tuple[float, int, Resources, bool]]
    """Each held job's (latest end, id, resources, in the same queue)."""

    @classmethod
    def take(cls, scheduler: Scheduler, job: Job) -> EstimateInput:
        """Copy the parts of `scheduler` the estimate of `job` reads."""
        queue = job.spec.queue
        spec = scheduler.cache.queues.get(queue)
        limit = None if spec is None else (spec.nominal + spec.borrowing_limit if spec.cohort else spec.nominal)
        return cls(
            job=job,
            ahead=scheduler.queues.pending_ahead(job),
            limit=limit,
            free=scheduler.cache.capacity - scheduler.cache.used,
            queue_used=scheduler.cache.usage.get(queue, Resources()),
            events=[
                (held.expected_end, held.id, held.spec.total, held.spec.queue == queue)
                for held in scheduler.cache.holding.values()
            ],
        )


def estimate(scheduler: Scheduler, job: Job, now: float) -> Estimate:
    """Position and estimated start of a pending job."""
    return replay(EstimateInput.take(scheduler, job), now)


def replay(state: EstimateInput, now: float) -> Estimate:
    """Position and estimated start of the snapshot's job."""
    position = len(state.ahead) + 1
    if state.limit is None:
        return Estimate(position, None)
    ahead = heapq.nsmallest(MAX_REPLAYED, state.ahead, key=lambda other: other.sort_key)
    free, queue_used, events = state.free, state.queue_used, list(state.events)
    heapq.heapify(events)
    clock = now
    start: float | None = None
    for replayed in [*ahead, state.job]:
        total = replayed.spec.total
        clock = max(clock, replayed.not_before)
        while not (total.fits_in(free) and (queue_used + total).fits_in(state.limit)):
            if not events:
                return Estimate(position, None)
            end, _, amount, same_queue = heapq.heappop(events)
            clock = max(clock, end)
            free = free + amount
            if same_queue:
                queue_used = queue_used - amount
        free = free - total
        queue_used = queue_used + total
        heapq.heappush(events, (clock + replayed.spec.max_runtime_s, replayed.id, total, True))
        start = clock
    return Estimate(position, start)


__all__ = ["MAX_REPLAYED", "Estimate", "EstimateInput", "estimate", "replay"]
