"""Restore reads the store in pages and shares what jobs have in common; finished-job bookkeeping is bounded."""

from __future__ import annotations

import json
import random
import time

import pytest

from kubeforge.scheduler import scheduler as scheduler_module
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec
from kubeforge.scheduler.resources import Resources
from kubeforge.scheduler.scheduler import Scheduler
from kubeforge.scheduler.sharing import SharedValues
from kubeforge.scheduler.store import open_store


def test_active_jobs_in_pages_returns_every_unfinished_job_once_with_array_specs_shared(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.put_queue(QueueSpec("q", Resources(1000, 1024)))
        now = time.time()
        singles = store.submit_many([JobSpec("t", "q", ("echo", str(n))) for n in range(4)], now)
        tasks = store.submit_array(JobSpec("t", "q", ("echo", "task")), range(7), now)
        finished = store.get(singles[1])
        assert finished is not None
        finished.state = JobState.SUCCEEDED
        store.save([finished])
        restored = list(store.active_jobs(page=3))
        assert [job.id for job in restored] == sorted(set(singles + tasks) - {singles[1]})
        array_jobs = [job for job in restored if job.array_id is not None]
        assert len(array_jobs) == 7
        assert len({id(job.spec) for job in array_jobs}) == 1  # one spec object across pages
        assert [job.spec.command for job in restored[:3]] == [("echo", "0"), ("echo", "2"), ("echo", "3")]
    finally:
        store.close()


def test_parsed_specs_share_names_an_empty_environment_and_a_single_workers_total() -> None:
    first = JobSpec.from_dict(json.loads('{"team": "vision", "queue": "gpu", "command": ["a"]}'))
    second = JobSpec.from_dict(json.loads('{"team": "vision", "queue": "gpu", "command": ["b"]}'))
    assert first.team is second.team and first.queue is second.queue
    assert first.env is second.env and dict(first.env) == {}
    assert first.total is first.resources
    gang = JobSpec.from_dict({"team": "t", "queue": "q", "command": ["a"], "workers": 3, "env": {"A": "1"}})
    assert gang.total == gang.resources.times(3) and gang.total is not gang.resources
    assert dict(gang.env) == {"A": "1"} and gang.to_dict()["env"] == {"A": "1"}


def test_specs_asking_for_the_same_resources_and_command_share_one_object_each() -> None:
    ask = '{"team": "t", "queue": "q", "command": ["a"], "resources": {"cpu": "1500m", "memory": "3Gi"}, "workers": 2}'
    first, second = JobSpec.from_dict(json.loads(ask)), JobSpec.from_dict(json.loads(ask))
    assert first.resources is second.resources and first.total is second.total and first.command is second.command
    assert first.total == Resources(3000, 6144, 0) and first.resources == Resources(1500, 3072, 0)
    other = JobSpec.from_dict({"team": "t", "queue": "q", "command": ["a"], "resources": {"cpu": 1, "memory": 1}})
    assert other.resources == Resources(1000, 1, 0) and other.resources is not first.resources


def test_shared_values_stop_growing_at_their_limit() -> None:
    share: SharedValues[tuple[str, ...]] = SharedValues(limit=2)
    kept = [share(("run", str(n))) for n in range(5)]
    assert len(share) == 2 and kept == [("run", str(n)) for n in range(5)]
    assert share(("run", "1")) is kept[1] and share(("run", "4")) is not kept[4]  # past the limit: not kept


def test_finished_jobs_remembered_are_bounded_and_older_ones_are_asked_of_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "FINISHED_REMEMBERED", 3)
    asked: list[int] = []

    def state_of(job_id: int) -> JobState | None:
        asked.append(job_id)
        return JobState.SUCCEEDED

    sched = Scheduler(Resources(10_000, 10_000), [QueueSpec("q", Resources(10_000, 10_000))], state_of=state_of)
    spec = JobSpec("t", "q", ("true",))
    for job_id in range(1, 6):
        sched.add(Job(job_id, spec, float(job_id)), 0.0)
        assert sched.cancel(job_id, 1.0)[0][0].state is JobState.CANCELLED
    assert list(sched._done) == [3, 4, 5]
    dependent = Job(6, JobSpec("t", "q", ("true",), depends_on=(1, 5)), 6.0)
    assert sched.add(dependent, 2.0)[0].state is JobState.FAILED  # 5 was cancelled, known without asking
    assert asked == [1]  # 1 was forgotten: the store was asked


def test_jobs_restored_in_bulk_come_out_in_the_same_order_as_jobs_added_one_by_one() -> None:
    rng = random.Random(7)
    queues = [QueueSpec(f"q{index}", Resources(10**6, 10**6)) for index in range(3)]
    jobs = [
        (job_id, JobSpec("t", f"q{rng.randrange(3)}", ("true",), priority=rng.choice((100, 500, 1000))), rng.random())
        for job_id in range(1, 400)
    ]
    one_by_one, in_bulk = Scheduler(Resources(1, 1), queues), Scheduler(Resources(1, 1), queues)
    for job_id, spec, created in jobs:
        one_by_one.add(Job(job_id, spec, created), 0.0)
    assert in_bulk.add_many([Job(job_id, spec, created) for job_id, spec, created in jobs], 0.0) == []
    for queue in queues:
        order = [job.id for job in one_by_one.queues.ordered(queue.name, 400)]
        assert [job.id for job in in_bulk.queues.ordered(queue.name, 400)] == order
        popped = []
        while in_bulk.queues.head(queue.name) is not None:
            popped.append(in_bulk.queues.pop(queue.name).id)
        assert popped == order
        expected = [job_id for job_id, spec, _ in jobs if spec.queue == queue.name]
        expected.sort(key=lambda i: (-jobs[i - 1][1].priority, jobs[i - 1][2], i))  # priority, then age
        assert popped == expected
