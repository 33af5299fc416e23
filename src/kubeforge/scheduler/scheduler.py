"""The scheduling loop, in numbered phases after Kueue: heads, snapshot, nominate, order, admit, requeue.

The scheduler is pure and in memory: it decides and records in its own state, and returns
what the dispatcher must persist and do (launch, signal, kill). The clock is passed in.

A cycle is incremental: a head that preempting cannot help is parked with the generations of
what could change its verdict, and later cycles pass over it without re-evaluating it until one
of them changes (its queue's or cohort's usage, a queue definition) or, for a head waiting for
capacity, until enough capacity could be free. A cycle looks only at the queues where something
happened (`parking.Parking`); heads parked on capacity wait in per-team lists kept in order
between cycles and are merged one per team into the cycle's heap (`merge.ParkedMerge`): once the
reservation is made and backfill spent, only those whose need fits the headroom or whose cohort's
usage grew join it (`merge.Wakeups`), and a head held for the reservation stays parked.
No cycle sorts every pending job.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubeforge.launch.base import MAX_REQUEUES, state_of_exit_code
from kubeforge.resources import Resources
from kubeforge.scheduler.cache import Cache, Snapshot, Verdict
from kubeforge.scheduler.fairshare import FairShare
from kubeforge.scheduler.merge import Candidate, OrderKey, ParkedMerge, Wakeups
from kubeforge.scheduler.model import Job, JobState, QueueSpec, Reason
from kubeforge.scheduler.parking import CapacityPark, Parking
from kubeforge.scheduler.preemption import find_victims, preemption_candidates, shadow_time
from kubeforge.scheduler.queues import QueueManager

MAX_BACKOFF_S = 3600.0
FINISHED_REMEMBERED = 100_000
"""How many finished jobs' states the scheduler keeps for dependency checks; older ones are asked of the store."""
TEAM_CAP_RECHECK_S = 1.0
"""How long a job whose team is at its queue's running cap waits before it is looked at again."""


@dataclass
class CycleResult:
    """What one cycle decided: jobs to launch, to stop gracefully, to kill, and those that changed."""

    admitted: list[Job] = field(default_factory=list)
    stop: list[Job] = field(default_factory=list)
    kill: list[Job] = field(default_factory=list)
    changed: list[Job] = field(default_factory=list)


@dataclass
class _Reservation:
    at: float
    extra: Resources


class Scheduler:
    """Queues, cache and fair share behind one lock held by the caller; every method takes `now`."""

    def __init__(
        self,
        capacity: Resources,
        queues: Iterable[QueueSpec] = (),
        grace_s: float = 30.0,
        half_life_s: float = 3600.0,
        backfill_window: int = 16,
        state_of: Callable[[int], JobState | None] = lambda _job_id: None,
    ) -> None:
        self.cache = Cache(capacity, queues)
        self.queues = QueueManager()
        self.fair_share = FairShare(half_life_s)
        self.grace_s = grace_s
        self.backfill_window = backfill_window
        self.jobs: dict[int, Job] = {}
        self._state_of = state_of
        self._deadlines: list[tuple[float, int]] = []
        self._stopping: dict[int, Job] = {}
        self._stopping_total = Resources()
        self._dependents: dict[int, set[int]] = {}
        self._done: OrderedDict[int, JobState] = OrderedDict()
        self._backfill_budget = backfill_window
        self._parking = Parking()
        self._waiters = self._parking.on_capacity
        """Heads blocked by capacity that preempting could not help (see `_still_waiting`)."""

    # -- events ---------------------------------------------------------------------------

    def add(self, job: Job, now: float) -> list[Job]:
        """Track a job in any state (a new submission, or one restored from the store)."""
        self.jobs[job.id] = job
        if job.state.holds_resources:
            self.cache.assume(job)
            self._watch_deadline(job)
            if job.state is JobState.STOPPING:
                self._mark_stopping(job)
            return []
        if job.state is not JobState.PENDING:
            return []
        failed = self._failed_dependency(job)
        if failed is not None:
            return self._finish(job, JobState.FAILED, Reason.DEPENDENCY_FAILED, now, str(failed))
        unmet = [dep for dep in job.spec.depends_on if self._dependency_state(dep) is not JobState.SUCCEEDED]
        for dep in unmet:
            self._dependents.setdefault(dep, set()).add(job.id)
        self.queues.push(job, now, dependencies_met=not unmet)
        return []

    def add_many(self, jobs: Iterable[Job], now: float) -> list[Job]:
        """Track many jobs at once (a restore), each queue ordered once at the end; what changed."""
        changed: list[Job] = []
        with self.queues.bulk():
            for job in jobs:
                changed += self.add(job, now)
        return changed

    def started(self, job_id: int, handle: str) -> Job | None:
        """The backend accepted the launch: ADMITTED becomes RUNNING."""
        job = self.jobs.get(job_id)
        if job is None or job.state is not JobState.ADMITTED:
            return None
        job.state, job.handle = JobState.RUNNING, handle
        return job

    def exited(self, job_id: int, exit_code: int, now: float) -> list[Job]:
        """A launched job ended: requeue a preempted one, retry a failed one, finish the rest."""
        job = self.jobs.get(job_id)
        if job is None or not job.state.holds_resources:
            return []
        self.cache.forget(job)
        if self._stopping.pop(job.id, None) is not None:
            self._stopping_total = self._stopping_total - job.spec.total
        job.exit_code, job.stop_deadline = exit_code, None
        # preempted by the scheduler, or by the platform (a drained node, SLURM's signal): the launch
        # checkpointed on SIGTERM and said so with its exit code; a bounded number of times, then it fails
        preempted_itself = (
            state_of_exit_code(exit_code) is JobState.PREEMPTED
            and job.reason_code not in (Reason.CANCELLED, Reason.MAX_RUNTIME)
            and job.preemptions < MAX_REQUEUES
        )
        if (job.reason_code is Reason.PREEMPTED or preempted_itself) and not job.cancel_requested:
            job.attempt += 1
            job.preemptions += 1
            job.not_before = 0.0
            job.admitted_at = None
            self.queues.push(job, now)
            job.because(Reason.PREEMPTED)
            return [job]
        if job.cancel_requested:
            return self._finish(job, JobState.CANCELLED, Reason.CANCELLED, now)
        if job.reason_code is Reason.MAX_RUNTIME:
            return self._finish(job, JobState.FAILED, Reason.MAX_RUNTIME, now)
        if exit_code == 0:
            return self._finish(job, JobState.SUCCEEDED, Reason.SUCCEEDED, now)
        if job.attempt < job.spec.retries:
            delay = min(job.spec.backoff_s * 2**job.attempt, MAX_BACKOFF_S)
            job.attempt += 1
            job.admitted_at = None
            job.not_before = now + delay
            self.queues.push(job, now)
            job.because(Reason.BACKOFF, f"exit code {exit_code}, retry {job.attempt} in {delay:g} s")
            return [job]
        return self._finish(job, JobState.FAILED, Reason.EXIT_CODE, now, str(exit_code))

    def fail(self, job_id: int, why: Reason, detail: str, now: float) -> list[Job]:
        """End a job as FAILED now, whatever its state (it cannot run as specified), releasing what it holds."""
        job = self.jobs.get(job_id)
        if job is None or job.state.terminal:
            return []
        if job.state.holds_resources:
            self.cache.forget(job)
            if self._stopping.pop(job.id, None) is not None:
                self._stopping_total = self._stopping_total - job.spec.total
        else:
            self.queues.remove(job)
        job.stop_deadline = None
        return self._finish(job, JobState.FAILED, why, now, detail)

    def cancel(self, job_id: int, now: float) -> tuple[list[Job], Job | None]:
        """Cancel a job: pending ones end now; launched ones are returned to be stopped gracefully."""
        job = self.jobs.get(job_id)
        if job is None or job.state.terminal:
            return [], None
        job.cancel_requested = True
        if job.state.holds_resources:
            if job.state is not JobState.STOPPING:
                self._begin_stop(job, Reason.CANCELLED, now)
                return [job], job
            return [job], None
        self.queues.remove(job)
        return self._finish(job, JobState.CANCELLED, Reason.CANCELLED, now), None

    def set_queue(self, spec: QueueSpec) -> bool:
        """Add or change a queue's quota; False when it already had exactly this definition."""
        return self.cache.set_queue(spec)

    # -- the cycle ------------------------------------------------------------------------

    def schedule_once(self, now: float) -> CycleResult:
        """One scheduling cycle; see the module docstring for the phases."""
        result = CycleResult()
        self.fair_share.advance(now, self.cache.team_usage, self.cache.capacity)
        self._enforce_deadlines(now, result)
        # 1. heads: the first eligible job of every queue, less those parked (on capacity: merged per team below)
        self.queues.release_due(now)
        heads = self._parking.heads(self.cache, self.queues)
        if not heads and not self._waiters.parked:
            return result
        held_before = self._waiters.new_cycle()
        # 2. snapshot
        snapshot = self.cache.snapshot()
        # 3. nominate and 4. order: non-borrowing first, then the team's fair share, priority, age
        candidates: list[Candidate] = [(self._order_key(job, snapshot), job, None) for job in heads]
        merge = ParkedMerge(self._waiters, lambda team: self._team_key(team, snapshot), candidates)
        heapq.heapify(candidates)
        reservation: _Reservation | None = None
        self._backfill_budget = self.backfill_window
        # 5. admit, re-ordering lazily as usage changes
        while candidates:
            key, job, team = heapq.heappop(candidates)
            fresh = self._order_key(job, snapshot)
            if fresh > key and candidates and fresh > candidates[0][0]:
                heapq.heappush(candidates, (fresh, job, team))
                continue
            saturated = reservation is not None and self._backfill_budget <= 0
            if saturated and reservation is not None and merge.wakeups is None:  # from here on, only the parked
                grown = self._parking.touched_cohorts  # heads that might change join the merge
                wakeups = Wakeups(self._waiters, self.cache, snapshot, self._headroom(snapshot), grown)
                merge.saturate(wakeups, self.cache, snapshot, reservation, now)
            waiting = saturated and self._still_waiting(job, snapshot)
            parked = self._waiters.parked.get(job.spec.queue) if team is not None else None
            held = saturated and not waiting and parked is not None and parked.job is job and merge.held(parked)
            if team is not None:  # a team's parked head: the next one of that team joins the merge
                merge.taken(team, job, settled=waiting or held)
            if waiting:
                _passed_over(job)  # it can neither run, preempt, reserve nor backfill: looking again changes nothing
                continue
            if held:
                continue
            park = self._waiters.take(job.spec.queue)  # looked at again: parked anew if still blocked
            self._parking.active.add(job.spec.queue)
            if self._at_team_cap(job, now):  # the queue's next job (another team's, maybe) gets its turn
                merge.turn_passes(fresh)
                self._push_following(job, candidates, snapshot)
                continue
            verdict = snapshot.check(job)
            if verdict.fits and self._allowed(job, now, reservation):
                merge.turn_passes(fresh)
                self._admit(job, now, snapshot, result)
                self._push_following(job, candidates, snapshot)
                merge.wake(self._headroom(snapshot))
                continue
            if verdict.fits:  # held for the reservation: it stays parked on what its record still says
                self._keep_parked(park, job, snapshot)
            # 6. requeue: keep the head, say why, preempt or reserve, and try backfill behind it
            stopping = len(self._stopping)
            reservation = self._handle_blocked(job, verdict, now, snapshot, reservation, result)
            self._backfill(job, now, snapshot, reservation, result)
            if len(self._stopping) != stopping:
                merge.turn_passes(fresh)
                merge.wake(self._headroom(snapshot))
        self._waiters.end_cycle(held_before)
        self._waiters.settle(self._would_borrow)
        return result

    def _team_key(self, team: str, snapshot: Snapshot) -> float:
        return round(self.fair_share.key(team, snapshot.team_share(team)), 9)

    def _headroom(self, snapshot: Snapshot) -> Resources:
        """The capacity less what is used, the jobs stopping not counted: what a parked head's need must fit."""
        return snapshot.capacity - (snapshot.used - self._stopping_total)

    def _push_following(self, job: Job, candidates: list[Candidate], snapshot: Snapshot) -> None:
        following = self.queues.head(job.spec.queue)
        if following is not None:
            heapq.heappush(candidates, (self._order_key(following, snapshot), following, None))

    def _would_borrow(self, job: Job) -> bool:
        spec = self.cache.queues.get(job.spec.queue)
        usage = self.cache.usage.get(job.spec.queue, Resources())
        return spec is not None and not usage.fits_with(job.spec.total, spec.nominal)

    def _order_key(self, job: Job, snapshot: Snapshot) -> OrderKey:
        return (
            snapshot.would_borrow(job),
            self._team_key(job.spec.team, snapshot),
            -job.spec.priority,
            job.created_at,
            job.id,
        )

    def _still_waiting(self, job: Job, snapshot: Snapshot, pressure: Resources | None = None) -> bool:
        """True for a head parked on capacity that stays blocked with nothing to preempt (`pressure`: what
        is used less what is stopping, when the caller has it)."""
        queue = job.spec.queue
        park = self._waiters.parked.get(queue)
        if park is None or park.job is not job or park.generation != self.cache.capacity_generation(queue):
            return False
        # Its candidates are still the same jobs (the generation), less those stopping since: stopping all
        # of them and every stopping job frees at most what they held then (`park.need` counts it off).
        if pressure is None:
            pressure = snapshot.used - self._stopping_total
        if pressure.fits_with(park.need, snapshot.capacity):
            return False  # enough capacity is free, or could be freed by preempting or stopping jobs ending
        spec = snapshot.queues[queue]
        total = job.spec.total
        return not spec.cohort or snapshot.cohort_usage[spec.cohort].fits_with(total, snapshot.cohort_pool[spec.cohort])

    def _keep_parked(self, park: CapacityPark | None, job: Job, snapshot: Snapshot) -> None:
        """Park a head told "capacity reserved for an earlier job": on its record when that was made for it under
        its queue's current capacity generation (what it needs beside the capacity used has not changed), else
        on a new one (its gang less what its preemption candidates hold). Later cycles pass over it while that
        does not fit (it is then told it waits for capacity) and look at it again when the capacity it needs is
        free (held for the reservation, or its turn to run)."""
        queue = job.spec.queue
        generation = self.cache.capacity_generation(queue)
        if park is not None and park.job is job and park.generation == generation:
            self._waiters.keep(park)
        else:
            candidates = preemption_candidates(job, snapshot, self.cache.holding_by_queue)
            held = sum((candidate.spec.total for candidate in candidates), Resources())
            self._waiters.park(job, generation, job.spec.total - held, self._headroom(snapshot))
            parked = self._waiters.parked.get(queue)
            if parked is not None:
                self._waiters.hold(parked)
        self._parking.active.discard(queue)

    def _at_team_cap(self, job: Job, now: float) -> bool:
        """True (and the job set aside for TEAM_CAP_RECHECK_S) when its team already runs as many jobs in its
        queue as the queue's max_running_per_team allows."""
        cap = self.cache.queues[job.spec.queue].max_running_per_team
        if not cap or self.cache.running_by_team.get((job.spec.queue, job.spec.team), 0) < cap:
            return False
        self.queues.pop(job.spec.queue)
        job.not_before = now + TEAM_CAP_RECHECK_S
        self.queues.push(job, now)
        job.because(Reason.TEAM_CAP)
        return True

    def _allowed(self, job: Job, now: float, reservation: _Reservation | None) -> bool:
        if reservation is None or now + job.spec.max_runtime_s <= reservation.at:
            return True
        if job.spec.total.fits_in(reservation.extra):
            reservation.extra = reservation.extra - job.spec.total
            return True
        job.because(Reason.RESERVED)
        return False

    def _admit(self, job: Job, now: float, snapshot: Snapshot, result: CycleResult) -> None:
        self.queues.pop(job.spec.queue)
        snapshot.assume(job)
        self.cache.assume(job)
        job.state, job.admitted_at, job.handle = JobState.ADMITTED, now, ""
        job.because(Reason.ADMITTED)
        self._watch_deadline(job)
        result.admitted.append(job)

    def _handle_blocked(
        self,
        job: Job,
        verdict: Verdict,
        now: float,
        snapshot: Snapshot,
        reservation: _Reservation | None,
        result: CycleResult,
    ) -> _Reservation | None:
        if verdict.fits:
            return reservation
        job.because(verdict.reason)
        if verdict is Verdict.NO_QUEUE:
            return reservation
        candidates = preemption_candidates(job, snapshot, self.cache.holding_by_queue)
        victims = find_victims(job, snapshot, candidates, self._stopping)
        queue = job.spec.queue
        if victims is None and verdict in (Verdict.NO_QUOTA, Verdict.RECLAIM):
            # blocked until its queue's or cohort's usage changes: later cycles skip it until then
            self._parking.on_quota[queue] = (job.id, self.cache.quota_generation(queue))
            self._parking.active.discard(queue)  # parked: looked at again when its generation moves
        elif victims is None and verdict is Verdict.NO_CAPACITY:
            # stopping every candidate would not do: blocked until capacity frees or the candidates change
            held = sum((candidate.spec.total for candidate in candidates), Resources())
            generation = self.cache.capacity_generation(queue)
            self._waiters.park(job, generation, job.spec.total - held, self._headroom(snapshot))
            self._parking.active.discard(queue)
        if victims is None:
            pass
        elif not victims:
            job.because(Reason.VICTIMS_STOPPING)
            return reservation
        else:
            for victim in victims:
                self._begin_stop(victim, Reason.PREEMPTED, now)
                result.stop.append(victim)
            job.because(Reason.PREEMPTING, str(len(victims)))
            return reservation
        if verdict is Verdict.NO_CAPACITY and reservation is None:
            at, extra = shadow_time(job, snapshot, self.cache.holding.values(), now)
            if at is not None:
                return _Reservation(at, extra)
        return reservation

    def _backfill(
        self, head: Job, now: float, snapshot: Snapshot, reservation: _Reservation | None, result: CycleResult
    ) -> None:
        if reservation is None or self._backfill_budget <= 0:
            return
        self._backfill_budget -= 1
        for job in self.queues.ordered(head.spec.queue, self.backfill_window + 1)[1:]:
            if now + job.spec.max_runtime_s > reservation.at or not snapshot.check(job).fits:
                continue
            self.queues.remove(job)
            snapshot.assume(job)
            self.cache.assume(job)
            job.state, job.admitted_at, job.handle = JobState.ADMITTED, now, ""
            job.because(Reason.BACKFILLED)
            self._watch_deadline(job)
            result.admitted.append(job)

    def _watch_deadline(self, job: Job) -> None:
        """Stop `job` at its maximum runtime. A job that ends sooner leaves its entry behind (removed lazily);
        once those outnumber the jobs still held, the heap is rebuilt from them, so that jobs long finished
        (a year's maximum runtime is allowed) do not pile up in it."""
        heapq.heappush(self._deadlines, (job.expected_end, job.id))
        if len(self._deadlines) > 2 * len(self.cache.holding) + 64:
            self._deadlines = [
                (held.expected_end, held.id)
                for held in self.cache.holding.values()
                if held.state in (JobState.ADMITTED, JobState.RUNNING)
            ]
            heapq.heapify(self._deadlines)

    def _enforce_deadlines(self, now: float, result: CycleResult) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            end, job_id = heapq.heappop(self._deadlines)
            job = self.jobs.get(job_id)
            if job is None or job.state not in (JobState.ADMITTED, JobState.RUNNING) or job.expected_end != end:
                continue
            self._begin_stop(job, Reason.MAX_RUNTIME, now)
            result.stop.append(job)
        for job in list(self._stopping.values()):
            if job.stop_deadline is not None and job.stop_deadline <= now:
                job.stop_deadline = None
                result.kill.append(job)

    def _begin_stop(self, job: Job, why: Reason, now: float) -> None:
        job.state, job.stop_deadline = JobState.STOPPING, now + self.grace_s
        job.because(why)
        self._mark_stopping(job)

    def _mark_stopping(self, job: Job) -> None:
        if job.id not in self._stopping:
            self._stopping[job.id] = job
            self._stopping_total = self._stopping_total + job.spec.total

    def _finish(self, job: Job, state: JobState, why: Reason, now: float, detail: str = "") -> list[Job]:
        job.state, job.finished_at = state, now
        job.because(why, detail)
        self.jobs.pop(job.id, None)
        self._done[job.id] = state
        if len(self._done) > FINISHED_REMEMBERED:  # bounded: the oldest is forgotten (the store still knows it)
            self._done.popitem(last=False)
        for dep in job.spec.depends_on:  # no longer waits: forgotten by what it waited on, which may run long
            waiting_on = self._dependents.get(dep)
            if waiting_on is not None:
                waiting_on.discard(job.id)
                if not waiting_on:
                    del self._dependents[dep]
        changed = [job]
        for dependent_id in sorted(self._dependents.pop(job.id, ())):
            dependent = self.jobs.get(dependent_id)
            if dependent is None or dependent.state is not JobState.PENDING:
                continue
            if state is not JobState.SUCCEEDED:
                self.queues.remove(dependent)
                changed += self._finish(dependent, JobState.FAILED, Reason.DEPENDENCY_FAILED, now, str(job.id))
            elif all(self._dependency_state(dep) is JobState.SUCCEEDED for dep in dependent.spec.depends_on):
                self.queues.release(dependent.id, now)
                changed.append(dependent)
        return changed

    def _dependency_state(self, job_id: int) -> JobState | None:
        job = self.jobs.get(job_id)
        if job is not None:
            return job.state
        return self._done.get(job_id) or self._state_of(job_id)

    def _failed_dependency(self, job: Job) -> int | None:
        for dep in job.spec.depends_on:
            state = self._dependency_state(dep)
            if state is None or state in (JobState.FAILED, JobState.CANCELLED):
                return dep
        return None


def _passed_over(job: Job) -> None:
    """A parked head passed over is blocked by capacity, as looking at it again would say (it may have been
    held for a reservation when last looked at)."""
    if job.reason_code is not Reason.CAPACITY:
        job.because(Reason.CAPACITY)


__all__ = ["MAX_BACKOFF_S", "CycleResult", "Scheduler"]
