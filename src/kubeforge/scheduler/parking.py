"""Heads parked on capacity, kept between cycles in each team's scheduling order.

A head blocked by capacity that preempting cannot help is parked with the capacity generation of its
queue (what decides its preemption candidates) and what those candidates held. A parked head later held
for a reservation (the capacity it needs is free, but kept for an earlier job) stays parked on the same
record: its candidates and need have not changed, only whether the capacity it needs is free now. Each team's parked
heads stay in one list sorted by the part of the cycle's ordering key that does not move while they
stay parked (borrowing, priority, age, id): within a team the fair-share part is common, so a cycle
merges the teams' lists instead of giving every parked head a key and a heap slot every cycle.

An entry is live while its queue's record is the one that made it; a cycle skips the entries that go stale
in it, and `CapacityWaiters.settle` drops them after it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubeforge.resources import Resources
from kubeforge.scheduler.cache import Cache
from kubeforge.scheduler.model import Job, Reason
from kubeforge.scheduler.queues import QueueManager

WaiterEntry = tuple[bool, int, float, int, str]
"""(borrowing, -priority, created_at, id, queue): a parked head's place in its team's order."""

_COMPONENTS = ("cpu_m", "memory_mb", "gpu")


@dataclass(slots=True)
class CapacityPark:
    """Why a queue's head is parked: the head, the capacity generation it saw, and `need`: its gang less
    what its preemption candidates held (what must fit beside the capacity used less the stopping jobs).
    `blocking` is the component of `need` that did not fit when it was parked and `amount` how much of it
    the head needs (the wake index's key)."""

    job: Job
    generation: tuple[int, int, int]
    need: Resources
    blocking: int = 0
    amount: int = 0
    entry: WaiterEntry | None = None


def amounts(resources: Resources) -> tuple[int, int, int]:
    """The components of `resources`, in the order a park's `blocking` counts them."""
    return resources.cpu_m, resources.memory_mb, resources.gpu


def _amount(item: tuple[int, WaiterEntry]) -> int:
    return item[0]


class CapacityWaiters:
    """The parked heads by queue, per team in scheduling order, and by what each needs."""

    def __init__(self) -> None:
        self.parked: dict[str, CapacityPark] = {}
        self.by_team: dict[str, list[WaiterEntry]] = {}
        self.by_need: list[list[tuple[int, WaiterEntry]]] = [[] for _ in _COMPONENTS]
        """Per component: (the amount of it a head needs, its entry), sorted, for the heads it blocked."""
        self.held: dict[str, CapacityPark] = {}
        """Parked heads last told "capacity reserved for an earlier job" (by queue; checked on use)."""
        self._new: list[CapacityPark] = []
        self._gone: list[CapacityPark] = []
        """Placed heads unparked since the last `settle` (their entries go stale): their entries leave the lists
        there, unless parked again on the same record (`keep`)."""

    def park(self, job: Job, generation: tuple[int, int, int], need: Resources, headroom: Resources) -> None:
        """Park `job` (its queue's head), whose `need` does not fit `headroom` (the capacity less what is used,
        stopping jobs not counted); it joins its team's list and the index at `settle`, after the cycle."""
        self.unpark(job.spec.queue)
        needs, limits = amounts(need), amounts(headroom)
        blocking = next((index for index in range(len(needs)) if needs[index] > limits[index]), 0)
        park = CapacityPark(job, generation, need, blocking, needs[blocking])
        self.parked[job.spec.queue] = park
        self._new.append(park)

    def unpark(self, queue: str) -> None:
        """Forget the queue's parked head (its list entry goes stale)."""
        self.take(queue)

    def take(self, queue: str) -> CapacityPark | None:
        """Unpark the queue's head and return its record (its list entry goes stale unless `keep` puts it back)."""
        park = self.parked.pop(queue, None)
        if park is not None and park.entry is not None:
            self._gone.append(park)
        return park

    def keep(self, park: CapacityPark) -> None:
        """Park again, on the same record and in the same place, a head `take` unparked in this cycle and held
        for a reservation."""
        self.parked[park.job.spec.queue] = park
        self.held[park.job.spec.queue] = park

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
        component that blocked them (when most do, every parked head: the reader checks each one's need).
        Looking again at any other parked head finds it blocked by capacity with nothing to preempt, as it was."""
        found: dict[str, list[WaiterEntry]] = {}
        parked = self.parked
        if headroom is not None:
            limits = amounts(headroom)
            ends = [
                bisect.bisect_right(index, limit, key=_amount)
                for index, limit in zip(self.by_need, limits, strict=True)
            ]
            if 4 * sum(ends) < len(parked):  # few fit: read them from the index, then order them per team
                for index, end in zip(self.by_need, ends, strict=True):
                    for _, entry in itertools.islice(index, end):
                        park = parked.get(entry[4])
                        if park is not None and park.entry is entry:
                            found.setdefault(park.job.spec.team, []).append(entry)
                for entries in found.values():
                    entries.sort()
            else:  # many fit: every team's heads, in order (the reader passes over those that do not fit)
                found = {team: entries.copy() for team, entries in self.by_team.items()}
        for queue in queues:
            park = parked.get(queue)
            if park is not None and park.entry is not None:
                bisect.insort(found.setdefault(park.job.spec.team, []), park.entry)
        return found

    def settle(self, borrows: Callable[[Job], bool]) -> None:
        """After a cycle: place the heads parked in it (`borrows`: whether a head would borrow, as usage now
        stands), and drop the entries of the heads unparked in it, so that the next cycle reads no stale entry
        (one by one when few went, else by rebuilding the lists)."""
        for park in self._new:
            job = park.job
            if self.parked.get(job.spec.queue) is not park or park.entry is not None:
                continue
            park.entry = (borrows(job), -job.spec.priority, job.created_at, job.id, job.spec.queue)
            bisect.insort(self.by_team.setdefault(job.spec.team, []), park.entry)
            bisect.insort(self.by_need[park.blocking], (park.amount, park.entry))
        self._new.clear()
        gone = [park for park in self._gone if self.parked.get(park.job.spec.queue) is not park]
        self._gone.clear()
        rebuild = 8 * len(gone) > len(self.parked)
        for park in gone:
            if park.entry is not None:  # (a head taken twice in a cycle is listed twice)
                if not rebuild:
                    self._drop(park, park.entry)
                park.entry = None
        if rebuild:
            self._rebuild()

    def _drop(self, park: CapacityPark, entry: WaiterEntry) -> None:
        """Take a gone head's entry out of its team's list and the index (found by bisection, then identity: a
        head parked again may have an equal entry beside it)."""
        entries = self.by_team[park.job.spec.team]
        at = bisect.bisect_left(entries, entry)
        while entries[at] is not entry:
            at += 1
        del entries[at]
        index = self.by_need[park.blocking]
        at = bisect.bisect_left(index, (park.amount, entry))
        while index[at][1] is not entry:
            at += 1
        del index[at]

    def _rebuild(self) -> None:
        self.by_team = {}
        self.by_need = [[] for _ in _COMPONENTS]
        for park in self.parked.values():
            if park.entry is not None:
                self.by_team.setdefault(park.job.spec.team, []).append(park.entry)
                self.by_need[park.blocking].append((park.amount, park.entry))
        for entries in self.by_team.values():
            entries.sort()
        for index in self.by_need:
            index.sort()

    def clear(self) -> None:
        """Forget every parked head (a queue definition changed: every verdict may have)."""
        self.parked.clear()
        self.by_team.clear()
        self.by_need = [[] for _ in _COMPONENTS]
        self.held.clear()
        self._new.clear()
        self._gone.clear()


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


__all__ = ["CapacityPark", "CapacityWaiters", "Parking", "WaiterEntry", "amounts"]
