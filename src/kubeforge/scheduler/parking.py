"""Heads parked on capacity, kept between cycles in each team's scheduling order.

A head blocked by capacity that preempting cannot help is parked with the capacity generation of its
queue (what decides its preemption candidates) and what those candidates held. A parked head later held
for a reservation (the capacity it needs is free, but kept for an earlier job) stays parked on the same
record: its candidates and need have not changed, only whether the capacity it needs is free now. Each team's parked
heads stay in one list sorted by the part of the cycle's ordering key that does not move while they
stay parked (borrowing, priority, age, id): within a team the fair-share part is common, so a cycle
merges the teams' lists instead of giving every parked head a key and a heap slot every cycle.

Entries are dropped lazily: an entry is live while its queue's record is the one that made it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kubeforge.scheduler.cache import Cache, Snapshot
from kubeforge.scheduler.model import Job, Reason
from kubeforge.scheduler.queues import QueueManager
from kubeforge.scheduler.resources import Resources

WaiterEntry = tuple[bool, int, float, int, str]
"""(borrowing, -priority, created_at, id, queue): a parked head's place in its team's order."""

_COMPONENTS = ("cpu_m", "memory_mb", "gpu")


@dataclass(slots=True)
class CapacityPark:
    """Why a queue's head is parked: the head, the capacity generation it saw, and `need`: its gang less
    what its preemption candidates held (what must fit beside the capacity used less the stopping jobs).
    `blocking` names the component of `need` that did not fit when it was parked (the wake index's key)."""

    job: Job
    generation: tuple[int, int, int]
    need: Resources
    blocking: str = "cpu_m"
    entry: WaiterEntry | None = None


class CapacityWaiters:
    """The parked heads by queue, per team in scheduling order, and by what each needs."""

    def __init__(self) -> None:
        self.parked: dict[str, CapacityPark] = {}
        self.by_team: dict[str, list[WaiterEntry]] = {}
        self.by_need: dict[str, list[tuple[int, WaiterEntry]]] = {name: [] for name in _COMPONENTS}
        """Per component: (the amount of it a head needs, its entry), sorted, for the heads it blocked."""
        self.held: dict[str, CapacityPark] = {}
        """Parked heads last told "capacity reserved for an earlier job" (by queue; checked on use)."""
        self._new: list[CapacityPark] = []
        self._stale = 0

    def park(self, job: Job, generation: tuple[int, int, int], need: Resources, headroom: Resources) -> None:
        """Park `job` (its queue's head), whose `need` does not fit `headroom` (the capacity less what is used,
        stopping jobs not counted); it joins its team's list and the index at `settle`, after the cycle."""
        self.unpark(job.spec.queue)
        blocking = next((name for name in _COMPONENTS if getattr(need, name) > getattr(headroom, name)), "cpu_m")
        park = CapacityPark(job, generation, need, blocking)
        self.parked[job.spec.queue] = park
        self._new.append(park)

    def unpark(self, queue: str) -> None:
        """Forget the queue's parked head (its list entry goes stale)."""
        self.take(queue)

    def take(self, queue: str) -> CapacityPark | None:
        """Unpark the queue's head and return its record (its list entry goes stale unless `keep` puts it back)."""
        park = self.parked.pop(queue, None)
        if park is not None:
            self._stale += 1
        return park

    def keep(self, park: CapacityPark) -> None:
        """Park again, on the same record and in the same place, a head `take` unparked in this cycle and held
        for a reservation."""
        self.parked[park.job.spec.queue] = park
        self.held[park.job.spec.queue] = park
        self._stale -= 1  # its entry is live again (or, parked in this cycle, it is still to be placed)

    def new_cycle(self) -> dict[str, CapacityPark]:
        """The heads held for a reservation by the last cycle; this cycle holds its own (see `end_cycle`)."""
        held, self.held = self.held, {}
        return held

    def end_cycle(self, held_before: dict[str, CapacityPark]) -> None:
        """A head the last cycle held for a reservation and this one did not look at waits for capacity: the
        cycle passed over it, the capacity it needs being taken (had it fit, the cycle would have looked)."""
        for queue, park in held_before.items():
            if queue not in self.held and self.parked.get(queue) is park and park.job.reason_code is Reason.RESERVED:
                park.job.because(Reason.CAPACITY)

    def hold(self, park: CapacityPark) -> None:
        """A parked head looked at without being taken is held for a reservation (again)."""
        self.held[park.job.spec.queue] = park
        if park.job.reason_code is not Reason.RESERVED:
            park.job.because(Reason.RESERVED)

    def live(self, entry: WaiterEntry) -> CapacityPark | None:
        """The record behind a list entry, or None when the entry is stale."""
        park = self.parked.get(entry[4])
        return park if park is not None and park.entry is entry else None

    def suspects(self, queues: Iterable[str], headroom: Resources | None = None) -> dict[str, list[WaiterEntry]]:
        """Per team, in order: the parked heads of `queues` (whose cohort's usage changed) and, given the
        `headroom` (the capacity less what is used, stopping jobs not counted), those whose need fits it in the
        component that blocked them. Looking again at any other parked head finds it blocked by capacity with
        nothing to preempt, as it was."""
        found: dict[str, set[WaiterEntry]] = {}
        if headroom is not None:
            for name, index in self.by_need.items():
                limit = getattr(headroom, name)
                for amount, entry in index:
                    if amount > limit:
                        break
                    self._add_live(entry, found)
        for queue in queues:
            park = self.parked.get(queue)
            if park is not None and park.entry is not None:
                self._add_live(park.entry, found)
        return {team: sorted(entries) for team, entries in found.items()}

    def _add_live(self, entry: WaiterEntry, found: dict[str, set[WaiterEntry]]) -> None:
        park = self.live(entry)
        if park is not None:
            found.setdefault(park.job.spec.team, set()).add(entry)

    def settle(self, borrows: Callable[[Job], bool]) -> None:
        """After a cycle: place the heads parked in it (`borrows`: whether a head would borrow, as usage now
        stands), and rebuild the lists once stale entries outnumber live ones."""
        for park in self._new:
            job = park.job
            if self.parked.get(job.spec.queue) is not park or park.entry is not None:
                continue
            park.entry = (borrows(job), -job.spec.priority, job.created_at, job.id, job.spec.queue)
            bisect.insort(self.by_team.setdefault(job.spec.team, []), park.entry)
            bisect.insort(self.by_need[park.blocking], (getattr(park.need, park.blocking), park.entry))
        self._new.clear()
        if self._stale > 64 and self._stale > len(self.parked):
            self.by_team = {}
            self.by_need = {name: [] for name in _COMPONENTS}
            for park in self.parked.values():
                if park.entry is not None:
                    self.by_team.setdefault(park.job.spec.team, []).append(park.entry)
                    self.by_need[park.blocking].append((getattr(park.need, park.blocking), park.entry))
            for entries in self.by_team.values():
                entries.sort()
            for index in self.by_need.values():
                index.sort()
            self._stale = 0

    def clear(self) -> None:
        """Forget every parked head (a queue definition changed: every verdict may have)."""
        self.parked.clear()
        self.by_team.clear()
        self.by_need = {name: [] for name in _COMPONENTS}
        self.held.clear()
        self._new.clear()
        self._stale = 0


class Wakeups:
    """For the rest of a cycle once a reservation is made and backfill is spent: per team, the parked heads
    the cycle must still look at (`CapacityWaiters.suspects`), kept up to date as the cycle admits (a cohort's
    usage grows: a head parked in it may now be over its cohort's quota, or have a new borrower to preempt) and
    preempts (stopping jobs leave more headroom). Every other parked head would be passed over at its turn.
    The cohorts whose usage grew in the last cycle are checked too (between cycles usage only falls, which
    keeps a parked head waiting, and a change of what one could preempt moves its generation, which unparked
    it)."""

    def __init__(
        self, waiters: CapacityWaiters, cache: Cache, snapshot: Snapshot, headroom: Resources, grown: set[str]
    ) -> None:
        self._waiters, self._cache, self._snapshot = waiters, cache, snapshot
        self._headroom = headroom
        self._grown = grown
        """The cohorts whose usage grew since the last cycle's heads were taken (in the last cycle, after them)."""
        self._by_team = waiters.suspects((), headroom)
        self._checked: dict[str, int] = {}
        """Per cohort whose usage grew: its generation when its parked heads were last checked."""
        self._in_grown: set[WaiterEntry] = set()
        """The suspects found in those cohorts."""
        self._used = cache.used
        self._check_cohorts()

    def first(self, team: str, entries: list[WaiterEntry], at: int) -> Iterator[tuple[WaiterEntry, CapacityPark, bool]]:
        """The team's suspects from index `at` of `entries` (its parked heads) on, in order: each entry, its
        record, and whether its cohort's usage grew (else its generation has not moved and its cohort's quota
        still fits it). One whose need no longer fits the headroom (admissions took it) is no suspect any more."""
        found = self._by_team.get(team)
        if not found or at >= len(entries):
            return
        headroom, previous = self._headroom, None
        for entry in itertools.islice(found, bisect.bisect_left(found, entries[at]), None):
            park = self._waiters.live(entry)
            if park is None or entry is previous:
                continue
            previous = entry
            grown = entry in self._in_grown
            if grown or getattr(park.need, park.blocking) <= getattr(headroom, park.blocking):
                yield entry, park, grown

    def refresh(self, headroom: Resources) -> set[str]:
        """After an admission or a preemption in this cycle: the teams that may have new suspects."""
        grew = not headroom.fits_in(self._headroom)
        self._headroom = headroom
        if grew:  # stopping jobs leave more headroom: more heads may fit
            self._by_team = self._waiters.suspects((), headroom)
            self._checked.clear()
            self._in_grown.clear()
            self._check_cohorts()
            return set(self._by_team)
        return self._check_cohorts() if self._cache.used is not self._used else set()

    def _check_cohorts(self) -> set[str]:
        cache, snapshot = self._cache, self._snapshot
        self._used = cache.used
        teams: set[str] = set()
        for cohort in self._grown | cache.touched_cohorts:
            generation = cache.cohort_generations.get(cohort, 0)
            if self._checked.get(cohort) == generation:
                continue
            self._checked[cohort] = generation
            usage, pool = snapshot.cohort_usage[cohort], snapshot.cohort_pool[cohort]
            for queue in cache.cohort_members.get(cohort, ()):
                park = self._waiters.parked.get(queue)
                if park is None or park.entry is None:
                    continue
                if park.generation != cache.capacity_generation(queue) or not usage.fits_with(
                    park.job.spec.total, pool
                ):
                    bisect.insort(self._by_team.setdefault(park.job.spec.team, []), park.entry)
                    self._in_grown.add(park.entry)
                    teams.add(park.job.spec.team)
        return teams


class Parking:
    """Which heads a cycle passes over: those parked on quota or on capacity, and the queues where nothing
    happened since their head was parked."""

    def __init__(self) -> None:
        self.on_quota: dict[str, tuple[int, tuple[int, int, int]]] = {}
        """Per queue: a head blocked by quota with nothing to preempt, and the quota generation it saw."""
        self.on_capacity = CapacityWaiters()
        self.active: set[str] = set()
        """Queues whose head the last cycle looked at (unless parked since): the next cycle looks again."""
        self._config = -1
        """The queue definitions' generation the parked heads were parked under."""
        self.touched_cohorts: set[str] = set()
        """The cohorts whose usage changed between the last cycle's heads and this one's."""

    def heads(self, cache: Cache, queues: QueueManager) -> list[Job]:
        """The heads a cycle keys: those of the queues where something happened since the last cycle (or
        whose head it looked at), less those parked on quota or capacity whose generation has not moved (a
        parked head whose generation moved is unparked here). Every other queue's head is still parked."""
        if self._config != cache.config_generation:
            self.on_capacity.clear()
            self._config = cache.config_generation
            looked_at: set[str] = set(cache.queues)
        else:
            looked_at = self.active | queues.touched | cache.touched_queues
            for cohort in cache.touched_cohorts:
                looked_at.update(cache.cohort_members.get(cohort, ()))
        self.touched_cohorts = set(cache.touched_cohorts)
        queues.touched.clear()
        cache.touched_queues.clear()
        cache.touched_cohorts.clear()
        parked_on_capacity = self.on_capacity.parked
        heads = []
        for name in looked_at:
            head = queues.head(name)
            park = parked_on_capacity.get(name)
            if park is not None:
                if park.job is head and park.generation == cache.capacity_generation(name):
                    continue
                self.on_capacity.unpark(name)
            if head is None or name not in cache.queues:
                continue
            parked = self.on_quota.get(name)
            if parked is None or parked != (head.id, cache.quota_generation(name)):
                heads.append(head)
        self.active = {head.spec.queue for head in heads}
        return heads


__all__ = ["CapacityPark", "CapacityWaiters", "Parking", "WaiterEntry", "Wakeups"]
