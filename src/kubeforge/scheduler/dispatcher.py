"""The active dispatcher: store + scheduler + backend, in a loop that survives being killed.

Every step: claim the inbox (new jobs, cancel requests), poll launched jobs, run one
scheduling cycle, record the decisions, then act on them (launch, signal). Because
decisions are recorded before acting and launches are idempotent by key, a dispatcher
killed at any moment and restarted neither loses a job nor launches one twice: on start
it restores every unfinished job and re-submits those recorded as admitted.

The lock guards only the in-memory scheduler (which `estimate` copies from); store and
backend I/O happen outside it, so neither a slow database nor a slow backend holds up an
API request. Failures are contained: a job that cannot be launched (a bad training spec,
a refused environment, a full disk) fails with the reason; a step that fails (a database
restart, a backend outage) is logged and retried with backoff; a dispatcher whose lease
was taken over (LeaseLostError) drops its state at once and stands by to take the lease
again, restoring from the store. `alive`, `leader`, `last_step_at` and `last_error` say
how it is doing (the API's /healthz reads them).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kubeforge.errors import InputError, LeaseHeldError
from kubeforge.scheduler.backends.base import LOST_EXIT_CODE, Backend, stored_handle
from kubeforge.scheduler.estimate import Estimate, EstimateInput, replay
from kubeforge.scheduler.model import Job, JobState, Reason
from kubeforge.scheduler.scheduler import Scheduler
from kubeforge.scheduler.store.base import LeaseLostError, QueueChanges, SqlStore, redact

_LOG = logging.getLogger("kubeforge.scheduler")
QUEUE_REFRESH_S = 2.0
FAIR_SHARE_SAVE_S = 10.0
LEASE_POLL_S = 0.2
"""How often a standby tries to take the lease."""
MAX_RETRY_S = 5.0
"""The longest wait between retries of a failing step."""


@dataclass
class StepReport:
    """What one step did, for logs and tests."""

    admitted: int = 0
    ended: int = 0
    changed: int = 0


@dataclass
class _Actions:
    """What a step decided to do to the backend, acted on after the decisions are recorded."""

    launch: list[Job] = field(default_factory=list)
    stop: list[Job] = field(default_factory=list)
    kill: list[Job] = field(default_factory=list)


class Dispatcher:
    """Drives one scheduler against one store and one backend; only the lease holder dispatches."""

    def __init__(
        self,
        store: SqlStore,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        grace_s: float = 30.0,
        half_life_s: float = 3600.0,
        interval_s: float = 0.05,
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock
        self.interval_s = interval_s
        self.grace_s, self.half_life_s = grace_s, half_life_s
        self.scheduler = self._new_scheduler()
        self.lock = threading.Lock()
        self._wake = threading.Event()
        set_wakeup = getattr(backend, "set_wakeup", None)
        if callable(set_wakeup):  # backends that know when a launch ends wake the loop at once
            set_wakeup(self.wake)
        self._started = False
        self._dirty = False
        """True between a step's first change and its end: a failure then calls for a restore from the store."""
        self._queues_loaded_at = float("-inf")
        self._queue_version = -1
        """The store's queue change number this scheduler's queues reflect (-1: none loaded)."""
        self._fair_share_saved_at = 0.0
        self.alive = False
        """True while `run` is looping (a standby waiting for the lease included)."""
        self.last_step_at: float | None = None
        """The clock at the end of the last step that succeeded, or None."""
        self.last_error = ""
        """Why the last step failed (credentials redacted); '' after a success."""

    @property
    def leader(self) -> bool:
        """True while this dispatcher holds the lease and has restored its jobs."""
        return self._started

    def health(self) -> dict[str, Any]:
        """`alive`, `leader`, `last_step_at` and `last_error`, for a health endpoint."""
        return {
            "alive": self.alive,
            "leader": self.leader,
            "last_step_at": self.last_step_at,
            "last_error": self.last_error,
        }

    def start(self, wait_for_lease_s: float = 0.0) -> None:
        """Take the lease, restore unfinished jobs and reconcile them with the backend."""
        deadline = time.monotonic() + wait_for_lease_s
        while not self.store.acquire_lease():
            if time.monotonic() >= deadline:
                raise LeaseHeldError("another dispatcher holds the lease on this store; run one active dispatcher")
            time.sleep(LEASE_POLL_S)
        try:
            self._restore()
        except BaseException:
            self._stand_down()
            raise

    def _restore(self) -> None:
        now = self.clock()
        changes = self.store.queue_changes(-1)
        history = self.store.fair_share()
        restored = list(self.store.active_jobs())
        actions = _Actions()
        with self.lock:
            self.scheduler = self._new_scheduler()
            self._apply_queues(changes, now)
            for team, (value, _) in history.items():
                self.scheduler.fair_share.history[team] = value
            changed = self.scheduler.add_many(restored, now)
            actions.launch = [job for job in restored if job.state is JobState.ADMITTED]
            actions.stop = [job for job in restored if job.state is JobState.STOPPING and job.handle]
        self.store.save(changed)
        # re-attach first (a launch is idempotent by key), so that a cancel below never orphans one
        self._act(actions, now)
        cancels = _Actions()
        with self.lock:
            changed = []
            for job in restored:
                if job.cancel_requested and not job.state.terminal and job.state is not JobState.STOPPING:
                    changed += self._cancel(job.id, now, cancels)
        self.store.save(changed)
        self._act(cancels, now)
        # the restored jobs live long: keep them out of the cyclic collector's full passes,
        # which would otherwise stall scheduling cycles with many pending jobs
        gc.freeze()
        self._started = True

    def queues_changed(self) -> None:
        """Reload the queues at the next step (one was created, changed or deleted in this process)."""
        self._queues_loaded_at = float("-inf")
        self._wake.set()

    def refresh_queues(self, now: float) -> None:
        """Apply the queues changed in the store since the last refresh: one small read when none did, and
        nothing recomputed (no generation moves, so heads parked on quota stay parked)."""
        changes = self.store.queue_changes(self._queue_version)
        if changes.names is None:
            self._queues_loaded_at = now
            return
        with self.lock:
            self._apply_queues(changes, now)

    def wake(self) -> None:
        """Run the next step now (a job was submitted or cancelled in this process)."""
        self._wake.set()

    def step(self) -> StepReport:
        """One pass: inbox, poll, schedule, record, act."""
        if not self._started:
            raise LeaseHeldError("the dispatcher has not started; call start() first")
        now = self.clock()
        if now - self._queues_loaded_at >= QUEUE_REFRESH_S:
            self.refresh_queues(now)
        claimed = self.store.claim_inbox()
        self._dirty = True  # from here on a failure may leave memory and store apart, until the step ends
        actions = _Actions()
        report = StepReport()
        with self.lock:
            changed = self._apply_inbox(claimed, now, actions)
            launched = {job.id: job.handle for job in self.scheduler.cache.holding.values() if job.handle}
            # a stopping job that never got a handle has nothing left to stop: it has ended
            unlaunched = [
                job.id
                for job in self.scheduler.cache.holding.values()
                if job.state is JobState.STOPPING and not job.handle
            ]
        ended = self.backend.poll(launched)
        reasons = {job_id: self.backend.reason(launched[job_id]) for job_id, code in ended.items() if code != 0}
        ended.update(dict.fromkeys(unlaunched, LOST_EXIT_CODE))
        with self.lock:
            for job_id, code in ended.items():
                exited = self.scheduler.exited(job_id, code, now)
                _add_reason(exited, job_id, reasons.get(job_id, ""))
                changed += exited
            result = self.scheduler.schedule_once(now)
        report.ended = len(ended)
        # record first, then act
        self.store.save([*changed, *result.admitted, *result.stop])
        actions.launch += result.admitted
        actions.stop += result.stop
        actions.kill += result.kill
        self._act(actions, now)
        if now - self._fair_share_saved_at >= FAIR_SHARE_SAVE_S:
            with self.lock:
                history = dict(self.scheduler.fair_share.history)
            self.store.save_fair_share(history, now)
            self._fair_share_saved_at = now
        report.admitted, report.changed = len(result.admitted), len(changed)
        self._dirty = False
        return report

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set: take the lease when free, survive failing steps, stand by when deposed."""
        self.alive = True
        retry_s = self.interval_s
        try:
            while not stop.is_set():
                self._wake.clear()  # wake-ups from here on are seen by the wait below
                try:
                    if not self._started and not self._take_lease():
                        stop.wait(LEASE_POLL_S)
                        continue
                    report = self.step()
                except LeaseLostError as exc:
                    _LOG.warning("dispatcher lost its lease: %s", exc)
                    self.last_error = redact(str(exc))
                    self._stand_down()
                    continue
                except Exception as exc:  # one failing step must not end dispatching
                    detail = getattr(exc, "detail", "") or str(exc)
                    self.last_error = redact(f"{type(exc).__name__}: {detail}")
                    _LOG.error("dispatcher step failed, retrying in %.2g s: %s", retry_s, self.last_error)
                    # what the step decided may be half recorded, or the lease went with the database's
                    # sessions: start again from the store, which has it all
                    if self._dirty or self._lease_gone():
                        self._stand_down()
                    stop.wait(retry_s)
                    retry_s = min(retry_s * 2, MAX_RETRY_S)
                    continue
                retry_s = self.interval_s
                self.last_step_at, self.last_error = self.clock(), ""
                if not (report.admitted or report.ended):
                    self._wake.wait(self.interval_s)
        finally:
            self.alive = False

    def estimate(self, job_id: int) -> Estimate | None:
        """Position and estimated start of a pending job this dispatcher tracks (from a snapshot)."""
        with self.lock:
            job = self.scheduler.jobs.get(job_id)
            if job is None or job.state is not JobState.PENDING:
                return None
            snapshot, reason = EstimateInput.take(self.scheduler, job), job.reason
        return replace(replay(snapshot, self.clock()), reason=reason)

    # -- helpers ------------------------------------------------------------------------------

    def _new_scheduler(self) -> Scheduler:
        return Scheduler(
            self.backend.capacity, grace_s=self.grace_s, half_life_s=self.half_life_s, state_of=self.store.state_of
        )

    def _take_lease(self) -> bool:
        self.store.lease_lost()  # drops a lease whose session died, so that it is taken afresh below
        if not self.store.acquire_lease():
            return False
        try:
            self._restore()
        except BaseException:
            self._stand_down()
            raise
        _LOG.warning("dispatcher took the lease and restored its jobs")
        return True

    def _lease_gone(self) -> bool:
        try:
            return self.store.lease_lost()
        except Exception:  # a store that cannot even tell counts as lost
            return True

    def _stand_down(self) -> None:
        """Forget everything in memory (the store has it) and act no more until the lease is taken again."""
        self._started, self._dirty = False, False
        self._queues_loaded_at, self._queue_version = float("-inf"), -1
        with self.lock:
            self.scheduler = self._new_scheduler()

    def _apply_inbox(self, claimed: list[Job], now: float, actions: _Actions) -> list[Job]:
        changed: list[Job] = []
        for job in claimed:
            known = self.scheduler.jobs.get(job.id)
            if known is None and job.state is JobState.PENDING and not job.cancel_requested:
                changed += self.scheduler.add(job, now)
            elif job.cancel_requested:
                if known is None:
                    changed += self.scheduler.add(job, now)
                changed += self._cancel(job.id, now, actions)
        return changed

    def _cancel(self, job_id: int, now: float, actions: _Actions) -> list[Job]:
        changed, to_stop = self.scheduler.cancel(job_id, now)
        if to_stop is not None and to_stop.handle:
            actions.stop.append(to_stop)
        return changed

    def _act(self, actions: _Actions, now: float) -> None:
        """Launch, stop and kill, each job in its own error boundary, then record the launches."""
        outcomes: list[tuple[Job, str | None, Exception | None]] = []
        for job in actions.launch:
            try:
                outcomes.append((job, self.backend.submit(job).id, None))  # the store keeps the handle's id
            except Exception as exc:  # it fails this job, never the dispatcher
                outcomes.append((job, None, exc))
        signals = [(job, self.backend.suspend) for job in actions.stop] + [
            (job, self.backend.cancel) for job in actions.kill if job.handle
        ]
        for job, signal in signals:
            try:
                signal(stored_handle(self.backend.name, job))
            except Exception as exc:  # the next deadline or poll deals with it
                _LOG.warning("could not signal job %s (%s): %s", job.id, job.handle, redact(str(exc)))
        changed: list[Job] = []
        with self.lock:
            for job, handle, error in outcomes:
                if handle is not None:
                    if self.scheduler.started(job.id, handle) is not None:
                        changed.append(job)
                    continue
                message = redact(str(error)) or type(error).__name__
                _LOG.warning("launch of job %s failed: %s", job.id, message)
                if isinstance(error, InputError):  # the job cannot run as specified: no retry helps
                    changed += self.scheduler.fail(job.id, Reason.LAUNCH_FAILED, message, now)
                    continue
                failed = self.scheduler.exited(job.id, LOST_EXIT_CODE, now)
                _add_reason(failed, job.id, f"launch failed: {message}")
                changed += failed
        self.store.save(changed)

    def _apply_queues(self, changes: QueueChanges, now: float) -> None:
        cache = self.scheduler.cache
        cache.set_queues(changes.changed)
        if changes.names is not None:
            for name in [name for name in cache.queues if name not in changes.names]:
                cache.remove_queue(name)
        self._queue_version, self._queues_loaded_at = changes.version, now


def _add_reason(changed: list[Job], job_id: int, why: str) -> None:
    """Append what the backend knows to the reason of the job that just ended or was requeued."""
    if not why:
        return
    for job in changed:
        if job.id == job_id:
            job.reason_detail = f"{job.reason_detail}: {why}"[:1000] if job.reason_detail else why[:1000]


__all__ = ["LEASE_POLL_S", "MAX_RETRY_S", "Dispatcher", "LeaseHeldError", "StepReport"]
