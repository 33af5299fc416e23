"""Feeding each team's parked heads into a cycle's merge, in their turn.

A cycle merges the heads to look at in one heap; each team's parked heads (`parking.CapacityWaiters`)
join it one at a time, in the team's order. Until a reservation is made and backfill is spent, every
parked head joins in turn and is looked at. From then on only the suspects of `parking.Wakeups` join:
every other parked head would be passed over at its turn, and nothing it could be told changes until
something happens (an admission, a preemption, a head set aside). Then the heads whose turn has passed
are counted as such (`turn_passes`) and the teams with new suspects put their first one in (`wake`).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable

from kubeforge.scheduler.model import Job
from kubeforge.scheduler.parking import CapacityPark, CapacityWaiters, WaiterEntry, Wakeups
from kubeforge.scheduler.resources import Resources

OrderKey = tuple[bool, float, int, float, int]
Candidate = tuple[OrderKey, Job, str | None]
"""A head in the cycle's merge: its ordering key, the job, and its team when it is a parked head."""


class ParkedMerge:
    """The parked heads of every team, fed into one cycle's merge (`candidates`, a heap)."""

    def __init__(self, waiters: CapacityWaiters, share: Callable[[str], float], candidates: list[Candidate]) -> None:
        self._waiters = waiters
        self._share = share
        """A team's fair-share part of the ordering key, as usage stands now."""
        self._candidates = candidates
        self._cursors = dict.fromkeys(waiters.by_team, 0)
        """Per team: the index of its first parked head whose turn has not come and that is not in the merge."""
        self._queued: dict[str, set[WaiterEntry]] = {}
        self.wakeups: Wakeups | None = None
        """Set once only suspects join (a reservation made, backfill spent)."""
        self._held: Callable[[CapacityPark, bool], bool] = lambda _park, _grown: False
        for team in self._cursors:
            self._push_next(team)

    def saturate(self, wakeups: Wakeups, held: Callable[[CapacityPark, bool], bool]) -> None:
        """From now on only the suspects of `wakeups` join; `held` holds a parked head for the reservation again
        when that is all looking at it would do (and says so)."""
        self.wakeups, self._held = wakeups, held

    def held(self, park: CapacityPark) -> bool:
        """Whether the parked head is only held for the reservation again (and then held)."""
        return self._held(park, True)

    def taken(self, team: str, job: Job, settled: bool) -> None:
        """The merge took `job`, a parked head of `team`: its turn has come, and the team's next one joins.
        `settled`: looking at `job` changes nothing (it is passed over, or held again), so the team's next
        suspects whose turn comes before anything else in the merge and that are only held again are held
        here, without joining the merge."""
        park = self._waiters.parked.get(job.spec.queue)
        if park is not None and park.entry is not None:
            self._queued.get(team, set()).discard(park.entry)
            after = bisect.bisect_right(self._waiters.by_team[team], park.entry)
            self._cursors[team] = max(self._cursors[team], after)
        self._push_next(team, settled)

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
        share = self._share(team)
        queued = self._queued.setdefault(team, set())
        last_held: WaiterEntry | None = None
        for entry, park, grown in self.wakeups.first(team, entries, self._cursors[team]):
            if entry in queued:
                break
            borrowing, priority, created_at, job_id, _ = entry
            key = (borrowing, share, priority, created_at, job_id)  # its `_order_key`, from what stays put
            if settled and (not self._candidates or key < self._candidates[0][0]) and self._held(park, grown):
                last_held = entry  # its turn, before anything else happens: held again, and that is all
                continue
            queued.add(entry)
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


__all__ = ["Candidate", "OrderKey", "ParkedMerge"]
