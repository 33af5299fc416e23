"""The active dispatcher: store + scheduler + backend, in a loop that survives being killed.

Every step: claim the inbox (new jobs, cancel requests), poll launched jobs, run one
scheduling cycle, record the decisions, then act on them (launch, signal). Because
decisions are recorded before acting and launches are idempotent by key, a dispatcher
killed at any moment and restarted neither loses a job nor launches one twice: on start
it restores every unfinished job and re-submits those recorded as admitted.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeforge.errors import KubeforgeError, LeaseHeldError
from kubeforge.scheduler.backends.base import LOST_EXIT_CODE, Backend
from kubeforge.scheduler.estimate import Estimate, estimate
from kubeforge.scheduler.model import Job, JobState
from kubeforge.scheduler.scheduler import Scheduler
from kubeforge.scheduler.store.base import SqlStore

_LOG = logging.getLogger("kubeforge.scheduler")
QUEUE_REFRESH_S = 2.0
FAIR_SHARE_SAVE_S = 10.0


@dataclass
class StepReport:
    """What one step did, for logs and tests."""

    admitted: int = 0
    ended: int = 0
    changed: int = 0


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
        self.scheduler = Scheduler(backend.capacity, grace_s=grace_s, half_life_s=half_life_s, state_of=store.state_of)
        self.lock = threading.Lock()
        self._wake = threading.Event()
        set_wakeup = getattr(backend, "set_wakeup", None)
        if callable(set_wakeup):  # backends that know when a launch ends wake the loop at once
            set_wakeup(self.wake)
        self._started = False
        self._queues_loaded_at = float("-inf")
        self._fair_share_saved_at = 0.0

    def start(self, wait_for_lease_s: float = 0.0) -> None:
        """Take the lease, restore unfinished jobs and reconcile them with the backend."""
        deadline = time.monotonic() + wait_for_lease_s
        while not self.store.acquire_lease():
            if time.monotonic() >= deadline:
                raise LeaseHeldError("another dispatcher holds the lease on this store; run one active dispatcher")
            time.sleep(0.2)
        with self.lock:
            now = self.clock()
            self._load_queues(now)
            for team, (history, _) in self.store.fair_share().items():
                self.scheduler.fair_share.history[team] = history
            changed: list[Job] = []
            restored = list(self.store.active_jobs())
            for job in restored:
                changed += self.scheduler.add(job, now)
            for job in restored:
                if job.cancel_requested and not job.state.terminal and job.state is not JobState.STOPPING:
                    changed += self._cancel(job.id, now)
            admitted = [job for job in restored if job.state is JobState.ADMITTED]
            self.store.save(changed)
            self._launch(admitted)
            for job in restored:
                if job.state is JobState.STOPPING and job.handle:
                    self.backend.suspend(job.handle)
            # the restored jobs live long: keep them out of the cyclic collector's full passes,
            # which would otherwise stall scheduling cycles with many pending jobs
            gc.freeze()
            self._started = True

    def queues_changed(self) -> None:
        """Reload the queues at the next step (one was created, changed or deleted in this process)."""
        self._queues_loaded_at = float("-inf")
        self._wake.set()

    def wake(self) -> None:
        """Run the next step now (a job was submitted or cancelled in this process)."""
        self._wake.set()

    def step(self) -> StepReport:
        """One pass: inbox, poll, schedule, record, act."""
        if not self._started:
            raise LeaseHeldError("the dispatcher has not started; call start() first")
        with self.lock:
            now = self.clock()
            if now - self._queues_loaded_at >= QUEUE_REFRESH_S:
                self._load_queues(now)
            changed: list[Job] = []
            for claimed in self.store.claim_inbox():
                known = self.scheduler.jobs.get(claimed.id)
                if known is None and claimed.state is JobState.PENDING and not claimed.cancel_requested:
                    changed += self.scheduler.add(claimed, now)
                elif claimed.cancel_requested:
                    if known is None:
                        changed += self.scheduler.add(claimed, now)
                    changed += self._cancel(claimed.id, now)
            report = StepReport()
            launched = {job.id: job.handle for job in self.scheduler.cache.holding.values() if job.handle}
            ended = self.backend.poll(launched)
            for job_id, code in ended.items():
                changed += self.scheduler.exited(job_id, code, now)
            report.ended = len(ended)
            result = self.scheduler.schedule_once(now)
            # record first, then act
            self.store.save([*changed, *result.admitted, *result.stop])
            self._launch(result.admitted)
            for job in result.stop:
                if job.handle:
                    self.backend.suspend(job.handle)
            for job in result.kill:
                if job.handle:
                    self.backend.cancel(job.handle)
            if now - self._fair_share_saved_at >= FAIR_SHARE_SAVE_S:
                self.store.save_fair_share(dict(self.scheduler.fair_share.history), now)
                self._fair_share_saved_at = now
            report.admitted, report.changed = len(result.admitted), len(changed)
            return report

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set; sleeps `interval_s` between idle steps."""
        if not self._started:
            self.start(wait_for_lease_s=float("inf"))
        while not stop.is_set():
            self._wake.clear()  # wake-ups from here on are seen by the wait below
            try:
                report = self.step()
            except KubeforgeError:
                _LOG.exception("dispatcher step failed; retrying")
                report = StepReport()
            if not (report.admitted or report.ended):
                self._wake.wait(self.interval_s)

    def estimate(self, job_id: int) -> Estimate | None:
        """Position and estimated start of a pending job this dispatcher tracks."""
        with self.lock:
            job = self.scheduler.jobs.get(job_id)
            if job is None or job.state is not JobState.PENDING:
                return None
            return estimate(self.scheduler, job, self.clock())

    def _cancel(self, job_id: int, now: float) -> list[Job]:
        changed, to_stop = self.scheduler.cancel(job_id, now)
        if to_stop is not None:
            self.store.save([to_stop])
            if to_stop.handle:
                self.backend.suspend(to_stop.handle)
        return changed

    def _launch(self, admitted: list[Job]) -> None:
        changed: list[Job] = []
        for job in admitted:
            try:
                handle = self.backend.submit(job)
            except (KubeforgeError, OSError) as exc:
                _LOG.warning("launch of job %s failed: %s", job.id, exc)
                changed += self.scheduler.exited(job.id, LOST_EXIT_CODE, self.clock())
                job.reason = f"launch failed: {exc}; {job.reason}"
                changed.append(job)
                continue
            if self.scheduler.started(job.id, handle) is not None:
                changed.append(job)
        self.store.save(changed)

    def _load_queues(self, now: float) -> None:
        specs = self.store.queues()
        for spec in specs:
            self.scheduler.set_queue(spec)
        for name in set(self.scheduler.cache.queues) - {spec.name for spec in specs}:
            self.scheduler.cache.remove_queue(name)
        self._queues_loaded_at = now


__all__ = ["Dispatcher", "LeaseHeldError", "StepReport"]
