"""Feeding each team's parked heads into a cycle's merge, in their turn.

A cycle merges the heads to look at in one heap; each team's parked heads (`parking.CapacityWaiters`)
join it one at a time, in the team's order. Until a reservation is made and backfill is spent, every
parked head joins in turn and is looked at. From then on only the suspects of `parking.Wakeups` join:
every other parked head would be passed over at its turn, and nothing it could be told changes until
something happens (an admission, a preemption, a head set aside). Then the heads whose turn has passed
are counted as such (`turn_passes`) and the teams with new suspects put their first one in (`wake`).
A parked head that is only held again at its turn is held without going round the cycle's loop (`taken`).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable
from typing import Protocol

from kubeforge.resources import Resources
from kubeforge.scheduler.cache import Cache, Snapshot
from kubeforge.scheduler.model import Job, Reason
from kubeforge.scheduler.parking import CapacityPark, CapacityWaiters, WaiterEntry, amounts


class Reservation(Protocol):
    """The capacity kept for the first head that did not fit: from `at`, less `extra` left beside it."""

    at: float
    extra: Resources


OrderKey = tuple[bool, float, int, float, int]
Candidate = tuple[OrderKey, Job, str | None]
"""A head in the cycle's merge: its ordering key, the job, and its team when it is a parked head."""


class _SizeVerdicts(dict[int, bool]):
    """Per gang size (a job's total, by identity: the totals of the cycle's jobs live through it): whether it fits
    beside the capacity `used` and is too big for `extra`, what the reservation leaves. Parked heads share a few
    sizes, so a run of held heads checks each size once."""

    def __init__(self, used: Resources, capacity: Resources, extra: Resources) -> None:
        super().__init__()
        self.used, self.capacity, self.extra = used, capacity, extra

    def verdict(self, total: Resources) -> bool:
        """The verdict for `total`, kept."""
        fits = self[id(total)] = self.used.fits_with(total, self.capacity) and not total.fits_in(self.extra)
        return fits


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
        self.limits = amounts(headroom)
        """The headroom's components: a suspect by need whose amount exceeds its component's is no more one."""
        self._grown = grown
        """The cohorts whose usage grew since the last cycle's heads were taken (in the last cycle, after them)."""
        self.by_team = waiters.suspects((), headroom)
        self._checked: dict[str, int] = {}
        """Per cohort whose usage grew: its generation when its parked heads were last checked."""
        self.in_grown: set[str] = set()
        """The queues of the suspects found in those cohorts (their generation or their cohort's quota may have
        changed); a queue has one live entry in a cycle, so its name stands for it."""
        self._used = cache.used
        self._check_cohorts()

    def refresh(self, headroom: Resources) -> set[str]:
        """After an admission or a preemption in this cycle: the teams that may have new suspects."""
        grew = not headroom.fits_in(self._headroom)
        self._headroom, self.limits = headroom, amounts(headroom)
        if grew:  # stopping jobs leave more headroom: more heads may fit
            self.by_team = self._waiters.suspects((), headroom)
            self._checked.clear()
            self.in_grown.clear()
            self._check_cohorts()
            return set(self.by_team)
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
                    bisect.insort(self.by_team.setdefault(park.job.spec.team, []), park.entry)
                    self.in_grown.add(queue)
                    teams.add(park.job.spec.team)
        return teams


class ParkedMerge:
    """The parked heads of every team, fed into one cycle's merge (`candidates`, a heap)."""

    def __init__(self, waiters: CapacityWaiters, share: Callable[[str], float], candidates: list[Candidate]) -> None:
        self._waiters = waiters
        self._share = share
        """A team's fair-share part of the ordering key, as usage stands now."""
        self._candidates = candidates
        self._cursors = dict.fromkeys(waiters.by_team, 0)
        """Per team: the index of its first parked head whose turn has not come and that is not in the merge."""
        self._queued: dict[str, set[str]] = {}
        """Per team: the queues of its parked heads in the merge (a queue has one live entry in a cycle)."""
        self.wakeups: Wakeups | None = None
        """Set once only suspects join (a reservation made, backfill spent)."""
        for team in self._cursors:
            self._push_next(team)

    def saturate(
        self, wakeups: Wakeups, cache: Cache, snapshot: Snapshot, reservation: Reservation, now: float
    ) -> None:
        """From now on only the suspects of `wakeups` join; `reservation` (made in this cycle, at `now`) holds
        the parked heads that fit but would run past it."""
        self.wakeups = wakeups
        self._cache, self._snapshot, self._reservation, self._now = cache, snapshot, reservation, now
        self._sizes = _SizeVerdicts(snapshot.used, snapshot.capacity, reservation.extra)
        self._shares: dict[str, tuple[Resources | None, float]] = {}
        """Per team: its fair-share key and the usage it was computed from (while that stays, so does the key)."""

    def held(self, park: CapacityPark, grown: bool = True) -> bool:
        """For a parked head at its turn, once the reservation is made: True (and the head held again, told so)
        when looking at it would find it fits, runs past the reservation and is too big for what the reservation
        leaves, so that it is held for the reservation and nothing else changes. Unless its cohort's usage
        `grown` (see `Wakeups`), its generation has not moved and its cohort's quota still fits it."""
        return self._holds(park, grown, self._size_verdicts(), self._reservation.at)

    def _size_verdicts(self) -> _SizeVerdicts:
        """The verdicts by gang size for the capacity used now and what the reservation leaves now."""
        sizes, used, extra = self._sizes, self._snapshot.used, self._reservation.extra
        if sizes.used is not used or sizes.extra is not extra:
            sizes = self._sizes = _SizeVerdicts(used, sizes.capacity, extra)
        return sizes

    def _holds(self, park: CapacityPark, grown: bool, sizes: _SizeVerdicts, at: float) -> bool:
        """`held`, given what it reads that stays put while heads are only held: the verdicts by gang size and
        the reservation's time (a run of held heads reads them once)."""
        job = park.job
        spec = job.spec
        total = spec.total
        fits = sizes.get(id(total))
        if fits is None:
            fits = sizes.verdict(total)
        if not fits or self._now + spec.max_runtime_s <= at:
            return False
        if grown:
            snapshot = self._snapshot
            cohort = snapshot.queues[spec.queue].cohort
            if park.generation != self._cache.capacity_generation(spec.queue) or (
                cohort and not snapshot.cohort_usage[cohort].fits_with(total, snapshot.cohort_pool[cohort])
            ):
                return False
        self._waiters.held[spec.queue] = park  # as `CapacityWaiters.hold`, inline: this runs for every held head
        if job.reason_code is not Reason.RESERVED:
            job.reason_code, job.reason_detail = Reason.RESERVED, ""  # `Job.because`, inline
        return True

    def _team_share(self, team: str) -> float:
        """`share`, once only suspects join: read again only when the team's usage moved."""
        usage = self._snapshot.team_usage.get(team)
        known = self._shares.get(team)
        if known is not None and known[0] is usage:
            return known[1]
        share = self._share(team)
        self._shares[team] = (usage, share)
        return share

    def taken(self, team: str, job: Job, settled: bool) -> None:
        """The merge took `job`, a parked head of `team`: its turn has come, and the team's next one joins.
        `settled`: looking at `job` changes nothing (it is passed over, or held again), so the team's next
        suspects whose turn comes before anything else in the merge and that are only held again are held
        here, without joining the merge; and then so is the merge's first head, when it is another parked
        head only held again (`_held_first`), and its team's next suspects, and so on."""
        while True:
            park = self._waiters.parked.get(job.spec.queue)
            if park is not None and park.entry is not None:
                self._queued.get(team, set()).discard(job.spec.queue)
                after = bisect.bisect_right(self._waiters.by_team[team], park.entry)
                self._cursors[team] = max(self._cursors[team], after)
            self._push_next(team, settled)
            if not settled:
                return
            first = self._held_first()
            if first is None:
                return
            team, job = first

    def _held_first(self) -> tuple[str, Job] | None:
        """The merge's first head, taken out of it, when it is a parked head that the cycle, taking it now, would
        only hold again (its key is up to date, and `held` holds it): its team and job. Teams whose fair-share
        keys are equal interleave their heads; their held runs go on here, one after the other, instead of each
        held head going round the cycle's loop."""
        candidates = self._candidates
        if not candidates:
            return None
        key, job, team = candidates[0]
        park = self._waiters.parked.get(job.spec.queue)
        if (
            team is None
            or park is None
            or park.job is not job
            or key[0] is not self._snapshot.would_borrow(job)
            or key[1] != self._team_share(team)
            or not self.held(park)
        ):
            return None
        heapq.heappop(candidates)
        return team, job

    def turn_passes(self, key: OrderKey) -> None:
        """Before something happens at the head of ordering key `key`: every parked head ordered before it had
        its turn (passed over, as all but the suspects are) and must not join the merge any more."""
        if self.wakeups is None:
            return
        for team, entries in self._waiters.by_team.items():
            share = self._share(team)
            at = self._cursors[team]
            self._cursors[team] = bisect.bisect_left(
                entries, key, lo=at, key=lambda entry: (entry[0], share, *entry[1:4])
            )

    def wake(self, headroom: Resources) -> None:
        """After an admission or a preemption: the teams with new suspects put their first one into the merge."""
        if self.wakeups is not None:
            for team in self.wakeups.refresh(headroom):
                self._push_next(team)

    def _push_next(self, team: str, settled: bool = False) -> None:
        entries = self._waiters.by_team.get(team)
        if entries is None:
            return
        if self.wakeups is None:
            self._push_next_in_turn(team, entries)
            return
        wakeups = self.wakeups
        found = wakeups.by_team.get(team)
        at = self._cursors[team]
        if not found or at >= len(entries):
            return
        share, queued, parked = self._team_share(team), self._queued.setdefault(team, set()), self._waiters.parked
        limits, in_grown, holds = wakeups.limits, wakeups.in_grown, self._holds
        sizes, reserved_at = self._size_verdicts(), self._reservation.at  # neither moves while heads are only held
        now, held, reserved = self._now, self._waiters.held, Reason.RESERVED
        turn_ends = self._candidates[0][0] if settled and self._candidates else None
        last_held = previous = None
        index = bisect.bisect_left(found, entries[at])
        while index < len(found):
            entry = found[index]
            queue = entry[4]
            park = parked.get(queue)
            if park is None or park.entry is not entry or entry is previous:
                del found[index]  # a stale entry (it stays so in this cycle), or one found twice
                continue
            grown = queue in in_grown
            if not grown and park.amount > limits[park.blocking]:
                # admissions took the headroom it needed: no suspect any more, until the headroom grows (which
                # finds the suspects anew) or its cohort's usage grows (which puts it back)
                del found[index]
                continue
            previous = entry
            index += 1
            if queue in queued:
                break
            key = (entry[0], share, entry[1], entry[2], entry[3])  # its `_order_key`, from what stays put
            if settled and (turn_ends is None or key < turn_ends):  # its turn, before anything else happens
                if grown:
                    if holds(park, grown, sizes, reserved_at):
                        last_held = entry  # held again, and that is all
                        continue
                else:  # `_holds` inline, its generation and cohort's quota unchanged: this runs for every held head
                    job = park.job
                    spec = job.spec
                    fits = sizes.get(id(spec.total))
                    if fits is None:
                        fits = sizes.verdict(spec.total)
                    if fits and now + spec.max_runtime_s > reserved_at:
                        held[queue] = park
                        if job.reason_code is not reserved:
                            job.reason_code, job.reason_detail = reserved, ""
                        last_held = entry
                        continue
            queued.add(queue)
            heapq.heappush(self._candidates, (key, park.job, team))
            break
        if last_held is not None:
            self._cursors[team] = bisect.bisect_right(entries, last_held)

    def _push_next_in_turn(self, team: str, entries: list[WaiterEntry]) -> None:
        """Before the reservation: every parked head joins in its turn, the next one as the last one is taken."""
        share = self._share(team)
        for index in range(self._cursors[team], len(entries)):
            entry = entries[index]
            park = self._waiters.live(entry)
            if park is not None:
                self._cursors[team] = index + 1
                borrowing, priority, created_at, job_id, _ = entry
                heapq.heappush(self._candidates, ((borrowing, share, priority, created_at, job_id), park.job, team))
                return
        self._cursors[team] = len(entries)


__all__ = ["Candidate", "OrderKey", "ParkedMerge", "Wakeups"]
