"""Pending jobs: a heap per queue (priority, then age), plus jobs held back by dependencies or backoff.

One lock guards the whole manager at its boundary (the scheduler's); nothing here locks.
Removal is lazy: a heap entry whose job left the pending set is skipped when it surfaces. A job in the
pending set (its queue's heap, or retry backoff) says so itself (`Job.queued`): no map of pending jobs
beside the heaps, which would cost tens of bytes per job with a million of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import contextmanager

from kubeforge.scheduler.model import Job, JobState, Reason


class QueueManager:
    """Pending jobs per queue, jobs waiting for dependencies, and jobs in retry backoff."""

    def __init__(self) -> None:
        self._heaps: dict[str, list[Job]] = {}
        """Per queue: its jobs as a heap in scheduling order (Job orders itself: no entry tuple per job)."""
        self._unordered: set[str] | None = None
        """While `bulk` loads: the queues whose lists were appended to and are not heaps yet."""
        self._queued = 0
        """How many jobs are in the pending set (`Job.queued`)."""
        self._backoff: list[tuple[float, int, Job]] = []
        self._waiting: dict[int, Job] = {}
        self._dead: dict[str, int] = {}
        self.touched: set[str] = set()
        """The queues whose head may have changed since the scheduler last took this set."""

    def __len__(self) -> int:
        return self._queued + len(self._waiting)

    def push(self, job: Job, now: float, dependencies_met: bool = True) -> None:
        """Queue a pending job: into its queue's heap, or to wait for dependencies or its backoff."""
        job.state = JobState.PENDING
        if not dependencies_met:
            job.because(Reason.DEPENDENCY)
            self._waiting[job.id] = job
            return
        if not job.queued:
            job.queued = True
            self._queued += 1
        if job.not_before > now:
            job.because(Reason.BACKOFF)
            heapq.heappush(self._backoff, (job.not_before, job.id, job))
            return
        self._push_active(job)

    def release(self, job_id: int, now: float) -> Job | None:
        """Move a job whose dependencies are now met from waiting into its queue."""
        job = self._waiting.pop(job_id, None)
        if job is not None:
            self.push(job, now)
        return job

    def remove(self, job: Job) -> bool:
        """Take a job out wherever it waits (its heap entry is dropped lazily); False when it waited nowhere."""
        if not job.queued:
            return self._waiting.pop(job.id, None) is not None
        self._unqueue(job)
        self.touched.add(job.spec.queue)
        self._dead[job.spec.queue] = dead = self._dead.get(job.spec.queue, 0) + 1
        if dead > 64 and dead > len(self._heaps.get(job.spec.queue, ())) // 2:
            self._compact(job.spec.queue)
        return True

    def release_due(self, now: float) -> None:
        """Move jobs whose retry backoff has passed into their queues."""
        while self._backoff and self._backoff[0][0] <= now:
            _, _, job = heapq.heappop(self._backoff)
            if job.queued:
                self._push_active(job)

    def head(self, queue: str) -> Job | None:
        """The first pending job of `queue` (highest priority, then oldest), or None."""
        heap = self._heaps.get(queue)
        while heap:
            job = heap[0]
            if job.queued:
                return job
            heapq.heappop(heap)
        return None

    def pop(self, queue: str) -> Job:
        """Remove and return the head of `queue` (call `head` first)."""
        job = heapq.heappop(self._heaps[queue])
        self._unqueue(job)
        self.touched.add(queue)
        return job

    def ordered(self, queue: str, limit: int) -> list[Job]:
        """Up to `limit` pending jobs of `queue` in scheduling order (for backfill and positions)."""
        heap = self._heaps.get(queue, [])
        # a job requeued while its old entry still waits to be dropped has two entries: count it once
        live = {id(job): job for job in heap if job.queued}
        return heapq.nsmallest(limit, live.values())

    def pending_ahead(self, job: Job) -> list[Job]:
        """The pending jobs of `job`'s queue that come before it, backoff included, unsorted (no sort)."""
        queue = job.spec.queue
        backoff = (other for _, _, other in self._backoff if other.spec.queue == queue)
        ahead = {id(other): other for other in (*self._heaps.get(queue, ()), *backoff) if other.queued and other < job}
        return list(ahead.values())

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Load many jobs (a restore): appended as they come, each queue made a heap once at the end, in
        linear time instead of a logarithmic push each. Nothing may read a head meanwhile."""
        self._unordered = set()
        try:
            yield
        finally:
            for queue in self._unordered:
                heapq.heapify(self._heaps[queue])
            self._unordered = None

    def _push_active(self, job: Job) -> None:
        self.touched.add(job.spec.queue)
        heap = self._heaps.setdefault(job.spec.queue, [])
        if self._unordered is None:
            heapq.heappush(heap, job)
        else:
            heap.append(job)
            self._unordered.add(job.spec.queue)

    def _unqueue(self, job: Job) -> None:
        job.queued = False
        self._queued -= 1

    def _compact(self, queue: str) -> None:
        heap = [job for job in self._heaps[queue] if job.queued]
        heapq.heapify(heap)
        self._heaps[queue] = heap
        self._dead[queue] = 0


__all__ = ["QueueManager"]
