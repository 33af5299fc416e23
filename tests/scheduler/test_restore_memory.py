"""Restore reads the store in pages and shares what jobs have in common; finished-job bookkeeping is bounded."""

from __future__ import annotations

import gc
import json
import random
import time
import tracemalloc

import pytest

from kubeforge.resources import Resources
from kubeforge.scheduler import scheduler as scheduler_module
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec, Reason
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


PENDING_JOBS = 3000
BYTES_PER_PENDING_JOB = {"array": 220, "single": 450}
"""What a pending job restored from the store may cost the scheduler, traced: an array task (its spec shared
with its array's) about 183 bytes, a single job with its own spec about 389 (291 and 575 before a job's
run-time fields moved to JobRun, the queues' map of pending jobs went and equal numbers were shared)."""


@pytest.mark.parametrize("kind", sorted(BYTES_PER_PENDING_JOB))
def test_memory_per_pending_job_restored_from_the_store_is_bounded(store_url: str, kind: str) -> None:
    queues = [QueueSpec(f"q{index}", Resources(10**6, 10**6)) for index in range(10)]
    store = open_store(store_url)
    try:
        store.put_queues(queues)
        now = time.time()
        if kind == "array":
            for array in range(PENDING_JOBS // 100):
                store.submit_array(JobSpec("team", f"q{array % 10}", ("python", "train.py")), range(100), now)
        else:
            specs = [JobSpec("team", f"q{n % 10}", ("python", "train.py"), name=f"job{n}") for n in range(PENDING_JOBS)]
            store.submit_many(specs, now)
        sched = Scheduler(Resources(1, 1), queues)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            assert sched.add_many(store.active_jobs(), now) == []
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    finally:
        store.close()
    assert len(sched.queues) == PENDING_JOBS
    assert held / PENDING_JOBS <= BYTES_PER_PENDING_JOB[kind]
    assert all(job.run is None and job.queued for job in sched.jobs.values())  # nothing launched yet


def test_a_jobs_run_time_fields_live_in_its_run_created_only_when_one_is_set() -> None:
    sched = Scheduler(Resources(10_000, 10_000), [QueueSpec("q", Resources(10_000, 10_000))])
    job = Job(1, JobSpec("t", "q", ("false",), retries=1, backoff_s=5.0), 0.0)
    job.handle, job.attempt, job.not_before, job.admitted_at = "", 0, 0.0, None  # the defaults: no run made
    assert job.run is None and (job.handle, job.attempt, job.exit_code) == ("", 0, None)
    sched.add(job, 0.0)
    assert sched.schedule_once(1.0).admitted == [job]
    assert job.run is not None and job.admitted_at == 1.0 and job.launch_key == "kf-1-0"
    sched.started(1, "handle-1")
    assert sched.exited(1, 2, 3.0) == [job]  # retried after its backoff, keeping what its run says
    assert (job.state, job.attempt, job.exit_code, job.not_before, job.admitted_at) == (
        JobState.PENDING,
        1,
        2,
        8.0,
        None,
    )
    assert job.queued and job.reason_code is Reason.BACKOFF and sched.schedule_once(4.0).admitted == []
    assert sched.schedule_once(8.0).admitted == [job] and job.launch_key == "kf-1-1"
    restored = Job(2, job.spec, 0.0, JobState.RUNNING, 3, 0.0, Reason.ADMITTED, "", 5.0, handle="h", preemptions=1)
    assert restored.run is not None and (restored.attempt, restored.admitted_at, restored.handle) == (3, 5.0, "h")


def test_deadlines_of_jobs_that_ended_early_do_not_pile_up_and_running_ones_still_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sched = Scheduler(Resources(10_000, 10_000), [QueueSpec("q", Resources(10_000, 10_000))], grace_s=1.0)
    year = 365 * 86400.0
    long_runner = Job(1, JobSpec("t", "q", ("sleep", "inf"), max_runtime_s=10.0), 0.0)
    sched.add(long_runner, 0.0)
    assert sched.schedule_once(0.0).admitted == [long_runner]
    sched.started(1, "h1")
    spec = JobSpec("t", "q", ("true",), resources=Resources(1000, 100), max_runtime_s=year)
    for job_id in range(2, 1002):  # a thousand short jobs, each allowed a year, ending at once
        sched.add(Job(job_id, spec, float(job_id)), 0.0)
        admitted = sched.schedule_once(0.0).admitted
        assert [job.id for job in admitted] == [job_id]
        sched.started(job_id, f"h{job_id}")
        assert sched.exited(job_id, 0, 0.0)[0].state is JobState.SUCCEEDED
        assert len(sched._deadlines) <= 2 * 2 + 64  # two jobs held at most: rebuilt past twice that, plus 64
    stopped = sched.schedule_once(10.0).stop
    assert stopped == [long_runner] and long_runner.reason_code is Reason.MAX_RUNTIME


def test_jobs_ahead_in_a_queue_are_its_pending_and_backoff_jobs_before_it_each_once() -> None:
    sched = Scheduler(Resources(1000, 1000), [QueueSpec(name, Resources(1000, 1000)) for name in ("q", "other")])
    high = JobSpec("t", "q", ("true",), resources=Resources(1000, 100), priority=1000, retries=1, backoff_s=100.0)
    low = JobSpec("t", "q", ("true",), resources=Resources(1000, 100), priority=100)
    jobs = {
        1: Job(1, high, 1.0),
        2: Job(2, low, 2.0),
        3: Job(3, low, 3.0),
        4: Job(4, high, 4.0),
        5: Job(5, JobSpec("t", "q", ("true",), depends_on=(1,)), 0.5),  # waits for job 1: in no queue yet
        6: Job(6, JobSpec("t", "other", ("true",)), 0.1),
    }
    for job in jobs.values():
        sched.add(job, 0.0)
    assert sched.schedule_once(1.0).admitted == [jobs[1]]
    sched.started(1, "h")
    assert sched.exited(1, 1, 2.0)[0].reason_code is Reason.BACKOFF  # back in the queue, held back 100 s
    sched.cancel(3, 2.0)  # its heap entry stays behind, dropped lazily
    assert len(sched.queues) == 5  # 1 (backoff), 2, 4, 6, and 5 waiting for 1
    ahead = {job_id: sorted(other.id for other in sched.queues.pending_ahead(jobs[job_id])) for job_id in (1, 2, 4)}
    assert ahead == {1: [], 2: [1, 4], 4: [1]}


def test_dependents_that_end_first_are_forgotten_by_the_job_they_waited_on() -> None:
    sched = Scheduler(Resources(10_000, 10_000), [QueueSpec("q", Resources(10_000, 10_000))])
    upstream = Job(1, JobSpec("t", "q", ("sleep", "inf")), 0.0)
    sched.add(upstream, 0.0)
    assert sched.schedule_once(0.0).admitted == [upstream]
    waiting = JobSpec("t", "q", ("true",), depends_on=(1,))
    for job_id in range(2, 202):  # resubmitted and cancelled while job 1 runs on
        assert sched.add(Job(job_id, waiting, float(job_id)), 1.0) == []
        assert sched.cancel(job_id, 1.0)[0][0].state is JobState.CANCELLED
    last = Job(202, waiting, 202.0)
    sched.add(last, 1.0)
    assert sched._dependents == {1: {202}}  # the cancelled ones are not kept for job 1
    sched.started(1, "h")
    assert [job.id for job in sched.exited(1, 0, 2.0)] == [1, 202] and last.queued
    assert sched._dependents == {}
