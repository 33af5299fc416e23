"""Choosing preemption victims and the reservation time for backfill."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubeforge.resources import Resources
from kubeforge.scheduler.cache import Snapshot
from kubeforge.scheduler.model import Job, JobState


def find_victims(job: Job, snapshot: Snapshot, candidates: list[Job], stopping: Mapping[int, Job]) -> list[Job] | None:
    """Jobs to stop so that `job` fits: [] when jobs already stopping will do, None when nothing helps.

    `candidates` come from `preemption_candidates`; victims are taken from the front, only as
    many as needed.
    """
    if not candidates and not stopping:
        return None
    released: list[Job] = []
    try:
        for victim in stopping.values():
            snapshot.release(victim)
            released.append(victim)
        if snapshot.check(job).fits:
            return []
        chosen: list[Job] = []
        for victim in candidates:
            snapshot.release(victim)
            released.append(victim)
            chosen.append(victim)
            if snapshot.check(job).fits:
                return chosen
        return None
    finally:
        for victim in released:
            snapshot.assume(victim)


def shadow_time(job: Job, snapshot: Snapshot, holding: Iterable[Job], now: float) -> tuple[float | None, Resources]:
    """When the job could start at the latest (running jobs end by their maximum runtime), and what is left then."""
    free = snapshot.free
    total = job.spec.total
    for running in sorted(holding, key=lambda held: held.expected_end):
        free = free + running.spec.total
        if total.fits_in(free):
            return max(now, running.expected_end), free - total
    return None, Resources()


def preemption_candidates(job: Job, snapshot: Snapshot, holding_by_queue: Mapping[str, Mapping[int, Job]]) -> list[Job]:
    """Jobs `job` may preempt, in the order they would go.

    Candidates are lower-priority jobs of the same queue and, when the job stays within its
    nominal quota, jobs of cohort queues that borrow (reclaim). They go lowest priority first,
    most recently admitted first.
    """
    queue = job.spec.queue
    found = [
        held
        for held in holding_by_queue.get(queue, {}).values()
        if held.state is not JobState.STOPPING and held.spec.priority < job.spec.priority
    ]
    spec = snapshot.queues.get(queue)
    if spec is not None and spec.cohort:
        within_nominal = snapshot.usage.get(queue, Resources()).fits_with(job.spec.total, spec.nominal)
        if within_nominal:
            for member in snapshot.borrowers(spec.cohort):
                if member != queue:
                    found += [
                        held
                        for held in holding_by_queue.get(member, {}).values()
                        if held.state is not JobState.STOPPING
                    ]
    found.sort(key=lambda held: (held.spec.priority, -(held.admitted_at or 0.0), -held.id))
    return found


__all__ = ["find_victims", "preemption_candidates", "shadow_time"]
