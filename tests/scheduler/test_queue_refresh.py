"""Queue changes are incremental: the cache keeps cohort totals by deltas, and a refresh reads only changed queues."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import PolledLaunch
from kubeforge.scheduler.cache import Cache
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.logs import LogSlice
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store import open_store
from kubeforge.scheduler.store.sqlite import SqliteStore


def _full_rebuild(cache: Cache) -> tuple[dict[str, Resources], dict[str, Resources], dict[str, set[str]]]:
    """The cohort totals computed from scratch over every queue, as the cache once did on every change."""
    pool: dict[str, Resources] = {}
    usage: dict[str, Resources] = {}
    members: dict[str, set[str]] = {}
    for name, spec in cache.queues.items():
        if spec.cohort:
            members.setdefault(spec.cohort, set()).add(name)
            pool[spec.cohort] = pool.get(spec.cohort, Resources()) + spec.nominal
            usage[spec.cohort] = usage.get(spec.cohort, Resources()) + cache.usage.get(name, Resources())
    return pool, usage, members


def _random_queue(rng: random.Random) -> QueueSpec:
    return QueueSpec(
        f"q{rng.randrange(12)}",
        Resources(rng.randrange(0, 8000, 500), rng.randrange(0, 4096, 256), rng.randrange(3)),
        cohort=rng.choice(("", "a", "b", "c")),
        borrowing_limit=Resources(rng.randrange(0, 2000, 500), 0, 0),
    )


def test_incremental_cohort_totals_equal_a_full_rebuild_over_random_queue_edits() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        cache = Cache(Resources(10**6, 10**6, 100))
        holding: list[Job] = []
        for step in range(150):
            action = rng.random()
            before = cache.config_generation
            if action < 0.45:
                spec = _random_queue(rng)
                same = cache.queues.get(spec.name) == spec
                assert cache.set_queue(spec) is not same
                assert cache.config_generation == before + (0 if same else 1)
            elif action < 0.55:
                name = f"q{rng.randrange(12)}"
                known = name in cache.queues
                cache.remove_queue(name)
                assert cache.config_generation == before + (1 if known else 0)
            elif action < 0.65 and cache.queues:
                unchanged = rng.choice(list(cache.queues.values()))
                assert not cache.set_queue(unchanged)
                assert cache.config_generation == before
            elif action < 0.85 or not holding:
                job_spec = JobSpec("t", f"q{rng.randrange(12)}", ("true",), resources=Resources(100, 10, 0))
                job = Job(seed * 1000 + step, job_spec, 0.0, state=JobState.RUNNING)
                cache.assume(job)
                holding.append(job)
            else:
                cache.forget(holding.pop(rng.randrange(len(holding))))
            pool, usage, members = _full_rebuild(cache)
            assert cache.cohort_pool == pool, (seed, step)
            assert cache.cohort_usage == usage, (seed, step)
            assert {cohort: set(names) for cohort, names in cache.cohort_members.items()} == members, (seed, step)


def test_queue_changes_reads_only_what_changed_and_tells_deletions(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.put_queues([QueueSpec(f"q{i}", Resources(1000, 1024)) for i in range(5)])
        everything = store.queue_changes(-1)
        assert [spec.name for spec in everything.changed] == [f"q{i}" for i in range(5)]
        assert store.queue_changes(everything.version).names is None  # nothing changed: nothing read
        changed = QueueSpec("q2", Resources(2000, 1024), cohort="c")
        store.put_queue(changed)
        assert store.delete_queue("q4")
        assert not store.delete_queue("q4")
        delta = store.queue_changes(everything.version)
        assert delta.changed == [changed]
        assert delta.names == frozenset({"q0", "q1", "q2", "q3"})
        assert store.queue_changes(delta.version).names is None
    finally:
        store.close()


class _IdleBackend(PolledLaunch):
    """Accepts launches and never ends them: what the dispatcher does around it is under test."""

    name: ClassVar[str] = "idle"

    def __init__(self) -> None:
        self.capacity = Resources(100_000, 100_000, 0)

    def submit(self, job: Job) -> JobHandle:
        return JobHandle(self.name, job.launch_key, job.launch_key)

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        return {}

    def suspend(self, handle: JobHandle) -> None:
        """Nothing runs, so nothing to stop."""

    def cancel(self, handle: JobHandle) -> None:
        """Nothing runs, so nothing to stop."""

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        raise NotImplementedError

    def reason(self, handle: str) -> str:
        return ""


def test_an_unchanged_refresh_moves_no_generation_and_parked_heads_stay_parked(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queues([QueueSpec("small", Resources(1000, 1024)), QueueSpec("other", Resources(1000, 1024))])
    dispatcher = Dispatcher(store, _IdleBackend())
    dispatcher.start()
    try:
        running = store.submit(JobSpec("t", "small", ("true",), resources=Resources(1000, 100)), time.time())
        blocked = store.submit(JobSpec("t", "small", ("true",), resources=Resources(1000, 100)), time.time())
        dispatcher.step()
        assert store.get(running).state is JobState.RUNNING  # type: ignore[union-attr]
        scheduler = dispatcher.scheduler
        generation = scheduler.cache.config_generation
        parked = dict(scheduler._parking.on_quota)
        assert parked["small"][0] == blocked
        dispatcher.queues_changed()
        dispatcher.step()  # a refresh with nothing changed
        store.put_queue(QueueSpec("other", Resources(1000, 1024)))  # written again, the same definition
        dispatcher.queues_changed()
        dispatcher.step()
        assert scheduler.cache.config_generation == generation
        assert scheduler._parking.on_quota == parked
        store.put_queue(QueueSpec("small", Resources(2000, 1024)))  # room for the blocked job
        dispatcher.queues_changed()
        dispatcher.step()
        assert scheduler.cache.config_generation == generation + 1
        assert store.get(blocked).state is JobState.RUNNING  # type: ignore[union-attr]
        assert store.delete_queue("other")
        dispatcher.queues_changed()
        dispatcher.step()
        assert set(scheduler.cache.queues) == {"small"}
    finally:
        store.close()
