"""Capacity, quotas and usage; `snapshot()` gives one cycle a copy it may change as it admits."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from kubeforge.resources import Resources
from kubeforge.scheduler.model import Job, QueueSpec, Reason

_NOTHING = Resources()


class Verdict(enum.Enum):
    """Whether a job's gang fits now, and what stops it when not."""

    FITS = "fits"
    FITS_BORROWING = "fits by borrowing cohort quota"
    NO_QUEUE = "its queue does not exist"
    NO_QUOTA = "waiting for quota"
    RECLAIM = "its nominal quota is lent to other queues"
    NO_CAPACITY = "waiting for capacity"

    @property
    def fits(self) -> bool:
        """True when the job may be admitted now."""
        return self in (Verdict.FITS, Verdict.FITS_BORROWING)

    @property
    def reason(self) -> Reason:
        """The reason a job this verdict blocks is given (ADMITTED for the fitting ones)."""
        return _BLOCKED.get(self, Reason.ADMITTED)


_BLOCKED = {
    Verdict.NO_QUEUE: Reason.NO_QUEUE,
    Verdict.NO_QUOTA: Reason.QUOTA,
    Verdict.RECLAIM: Reason.RECLAIM,
    Verdict.NO_CAPACITY: Reason.CAPACITY,
}


class Cache:
    """What the cluster has (capacity, queue quotas) and what admitted jobs hold."""

    def __init__(self, capacity: Resources, queues: Iterable[QueueSpec] = ()) -> None:
        self.capacity = capacity
        self.queues: dict[str, QueueSpec] = {}
        self.usage: dict[str, Resources] = {}
        self.team_usage: dict[str, Resources] = {}
        self.holding: dict[int, Job] = {}
        self.holding_by_queue: dict[str, dict[int, Job]] = {}
        self.running_by_team: dict[tuple[str, str], int] = {}
        """How many jobs each (queue, team) holds resources for (its max_running_per_team counts these)."""
        self.used = Resources()
        self.cohort_pool: dict[str, Resources] = {}
        self.cohort_usage: dict[str, Resources] = {}
        self.cohort_members: dict[str, dict[str, None]] = {}
        """Per cohort: its queues (a dict used as an ordered set)."""
        self.queue_generations: dict[str, int] = {}
        """Per queue: bumped on every change of what the queue's admitted jobs hold."""
        self.cohort_generations: dict[str, int] = {}
        """Per cohort: bumped on every usage change of any of its queues."""
        self.lender_generations: dict[str, int] = {}
        """Per cohort: bumped when the jobs of its borrowing queues change (what a reclaim may preempt)."""
        self.config_generation = 0
        """Bumped whenever a queue is added, changed or removed."""
        self.touched_queues: set[str] = set()
        self.touched_cohorts: set[str] = set()
        """The queues and cohorts whose generations moved since the scheduler last took these sets."""
        self.set_queues(queues)

    def set_queue(self, spec: QueueSpec) -> bool:
        """Add or change a queue; only it and its cohort are updated. False (and nothing moves, no generation
        included) when the queue already has exactly this definition."""
        old = self.queues.get(spec.name)
        if old == spec:
            return False
        if old is not None:
            self._leave_cohort(old)
        self.queues[spec.name] = spec
        self.usage.setdefault(spec.name, Resources())
        self._join_cohort(spec)
        self.config_generation += 1
        return True

    def set_queues(self, specs: Iterable[QueueSpec]) -> int:
        """Add or change many queues in one pass (a restore); how many changed."""
        return sum(self.set_queue(spec) for spec in specs)

    def remove_queue(self, name: str) -> None:
        """Forget a queue (its running jobs keep their usage until they end)."""
        old = self.queues.pop(name, None)
        if old is None:
            return
        self._leave_cohort(old)
        self.config_generation += 1

    def _join_cohort(self, spec: QueueSpec) -> None:
        """Count a queue's quota and usage into its cohort's totals (by delta, never by a rebuild)."""
        if not spec.cohort:
            return
        cohort = spec.cohort
        self.cohort_members.setdefault(cohort, {})[spec.name] = None
        self.cohort_pool[cohort] = self.cohort_pool.get(cohort, _NOTHING) + spec.nominal
        self.cohort_usage[cohort] = self.cohort_usage.get(cohort, _NOTHING) + self.usage.get(spec.name, _NOTHING)

    def _leave_cohort(self, spec: QueueSpec) -> None:
        """Take a queue's quota and usage out of its cohort's totals; a cohort left empty is forgotten."""
        if not spec.cohort:
            return
        cohort = spec.cohort
        members = self.cohort_members[cohort]
        del members[spec.name]
        if not members:
            del self.cohort_members[cohort], self.cohort_pool[cohort], self.cohort_usage[cohort]
            return
        self.cohort_pool[cohort] = self.cohort_pool[cohort] - spec.nominal
        self.cohort_usage[cohort] = self.cohort_usage[cohort] - self.usage.get(spec.name, _NOTHING)

    def _count(self, job: Job, amount: Resources) -> None:
        queue = job.spec.queue
        before = self.usage.get(queue, Resources())
        self.usage[queue] = after = before + amount
        self.team_usage[job.spec.team] = self.team_usage.get(job.spec.team, Resources()) + amount
        self.used = self.used + amount
        self.queue_generations[queue] = self.queue_generations.get(queue, 0) + 1
        self.touched_queues.add(queue)
        spec = self.queues.get(queue)
        if spec is not None and spec.cohort:
            cohort = spec.cohort
            self.touched_cohorts.add(cohort)
            self.cohort_usage[cohort] = self.cohort_usage[cohort] + amount
            self.cohort_generations[cohort] = self.cohort_generations.get(cohort, 0) + 1
            if not (before.fits_in(spec.nominal) and after.fits_in(spec.nominal)):
                self.lender_generations[cohort] = self.lender_generations.get(cohort, 0) + 1

    def quota_generation(self, queue: str) -> tuple[int, int, int]:
        """Changes whenever anything that decides `queue`'s quota verdicts changes (its or its cohort's usage)."""
        spec = self.queues.get(queue)
        cohort = self.cohort_generations.get(spec.cohort, 0) if spec is not None and spec.cohort else 0
        return self.queue_generations.get(queue, 0), cohort, self.config_generation

    def capacity_generation(self, queue: str) -> tuple[int, int, int]:
        """Changes whenever `queue`'s own jobs, its cohort's borrowers' jobs or any queue's definition change:
        what decides whether a head blocked by capacity has anything to preempt."""
        spec = self.queues.get(queue)
        lenders = self.lender_generations.get(spec.cohort, 0) if spec is not None and spec.cohort else 0
        return self.queue_generations.get(queue, 0), lenders, self.config_generation

    def assume(self, job: Job) -> None:
        """Count a job's gang against its queue, team and the capacity."""
        if job.id in self.holding:
            return
        self.holding[job.id] = job
        self.holding_by_queue.setdefault(job.spec.queue, {})[job.id] = job
        key = (job.spec.queue, job.spec.team)
        self.running_by_team[key] = self.running_by_team.get(key, 0) + 1
        self._count(job, job.spec.total)

    def forget(self, job: Job) -> None:
        """Release what a job held."""
        if self.holding.pop(job.id, None) is None:
            return
        del self.holding_by_queue[job.spec.queue][job.id]
        self.running_by_team[(job.spec.queue, job.spec.team)] -= 1
        self._count(job, Resources() - job.spec.total)

    def snapshot(self) -> Snapshot:
        """A copy of usage for one scheduling cycle."""
        return Snapshot(self)


class Snapshot:
    """Usage as one cycle sees it; `assume` and `release` change only this copy."""

    def __init__(self, cache: Cache) -> None:
        self.capacity = cache.capacity
        self.queues = cache.queues
        self.usage = dict(cache.usage)
        self.team_usage = dict(cache.team_usage)
        self.used = cache.used
        self.cohort_pool = cache.cohort_pool
        self.cohort_usage = dict(cache.cohort_usage)
        self.cohort_members = cache.cohort_members
        self._borrowers: dict[str, list[str]] = {}
        self._shares: dict[str, float] = {}

    @property
    def free(self) -> Resources:
        """Capacity not held by any admitted job."""
        return self.capacity - self.used

    def would_borrow(self, job: Job) -> bool:
        """True when admitting the job would take its queue past its nominal quota."""
        spec = self.queues.get(job.spec.queue)
        return spec is not None and not self.usage.get(spec.name, _NOTHING).fits_with(job.spec.total, spec.nominal)

    def check(self, job: Job) -> Verdict:
        """Whether the job's whole gang fits its queue's quota (borrowing allowed) and the capacity."""
        spec = self.queues.get(job.spec.queue)
        if spec is None:
            return Verdict.NO_QUEUE
        total = job.spec.total
        queue_used = self.usage.get(spec.name, _NOTHING)
        borrowing = not queue_used.fits_with(total, spec.nominal)
        if borrowing and not queue_used.fits_with(total, spec.quota_limit):
            return Verdict.NO_QUOTA
        if spec.cohort:
            if not self.cohort_usage[spec.cohort].fits_with(total, self.cohort_pool[spec.cohort]):
                return Verdict.NO_QUOTA if borrowing else Verdict.RECLAIM
        elif borrowing:
            return Verdict.NO_QUOTA
        if not self.used.fits_with(total, self.capacity):
            return Verdict.NO_CAPACITY
        return Verdict.FITS_BORROWING if borrowing else Verdict.FITS

    def borrowers(self, cohort: str) -> list[str]:
        """The cohort's queues that use more than their nominal quota (cached until usage changes)."""
        found = self._borrowers.get(cohort)
        if found is None:
            found = [name for name in self.cohort_members.get(cohort, ()) if self.borrowing(name)]
            self._borrowers[cohort] = found
        return found

    def borrowing(self, queue: str) -> bool:
        """True when the queue uses more than its nominal quota."""
        spec = self.queues.get(queue)
        return spec is not None and not self.usage.get(queue, Resources()).fits_in(spec.nominal)

    def assume(self, job: Job) -> None:
        """Count a job as admitted in this cycle."""
        self._add(job, job.spec.total)

    def release(self, job: Job) -> None:
        """Count a job as gone (a preemption victim, in a what-if)."""
        self._add(job, Resources() - job.spec.total)

    def team_share(self, team: str) -> float:
        """The team's current dominant share of the capacity (kept until the team's usage changes)."""
        share = self._shares.get(team)
        if share is None:
            share = self._shares[team] = self.team_usage.get(team, _NOTHING).dominant_share(self.capacity)
        return share

    def _add(self, job: Job, amount: Resources) -> None:
        queue = job.spec.queue
        self.usage[queue] = self.usage.get(queue, Resources()) + amount
        self.team_usage[job.spec.team] = self.team_usage.get(job.spec.team, Resources()) + amount
        self._shares.pop(job.spec.team, None)
        self.used = self.used + amount
        spec = self.queues.get(queue)
        if spec is not None and spec.cohort:
            self.cohort_usage[spec.cohort] = self.cohort_usage[spec.cohort] + amount
            self._borrowers.pop(spec.cohort, None)


__all__ = ["Cache", "Snapshot", "Verdict"]
