"""Where a pending job stands: its position in its queue and an estimated start time.

The estimate replays the queue in order against the running jobs' latest ends (admission
plus maximum runtime), so it is an upper bound when jobs finish early, and it ignores
other queues' future submissions.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from kubeforge.scheduler.model import Job
from kubeforge.scheduler.resources import Resources
from kubeforge.scheduler.scheduler import Scheduler

MAX_REPLAYED = 10_000


@dataclass(frozen=True)
class Estimate:
    """Position 1 is next in the queue; `start` is a Unix time, None when the job can never fit."""

    position: int
    start: float | None


def estimate(scheduler: Scheduler, job: Job, now: float) -> Estimate:
    """Position and estimated start of a pending job."""
    queue = job.spec.queue
    ahead = [other for other in scheduler.queues.pending_in(queue) if other.sort_key < job.sort_key]
    spec = scheduler.cache.queues.get(queue)
    if spec is None:
        return Estimate(len(ahead) + 1, None)
    limit = spec.nominal + spec.borrowing_limit if spec.cohort else spec.nominal
    free = scheduler.cache.capacity - scheduler.cache.used
    queue_used = scheduler.cache.usage.get(queue, Resources())
    events = [
        (held.expected_end, held.id, held.spec.total, held.spec.queue == queue)
        for held in scheduler.cache.holding.values()
    ]
    heapq.heapify(events)
    clock = now
    start: float | None = None
    for replayed in [*ahead[:MAX_REPLAYED], job]:
        total = replayed.spec.total
        clock = max(clock, replayed.not_before)
        while not (total.fits_in(free) and (queue_used + total).fits_in(limit)):
            if not events:
                return Estimate(len(ahead) + 1, None)
            end, _, amount, same_queue = heapq.heappop(events)
            clock = max(clock, end)
            free = free + amount
            if same_queue:
                queue_used = queue_used - amount
        free = free - total
        queue_used = queue_used + total
        heapq.heappush(events, (clock + replayed.spec.max_runtime_s, replayed.id, total, True))
        start = clock
    return Estimate(len(ahead) + 1, start)


__all__ = ["MAX_REPLAYED", "Estimate", "estimate"]
