"""A job's reason is a typed code plus a detail; users still see one text, and the store keeps that text."""

from __future__ import annotations

import time

from kubeforge.resources import Resources
from kubeforge.scheduler.api_io import job_view
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec, Reason
from kubeforge.scheduler.scheduler import Scheduler
from kubeforge.scheduler.store.sqlite import SqliteStore


def test_every_code_renders_a_text_that_parses_back_to_it() -> None:
    for reason in Reason:
        for detail in ("", "3", "node lost: OOMKilled"):
            if reason is Reason.OTHER and not detail:
                continue
            text = reason.render(detail)
            assert Reason.parse(text) == (reason, detail), text
    assert Reason.parse("written by an older version") == (Reason.OTHER, "written by an older version")


def test_a_retried_job_keeps_its_code_and_detail_through_the_store_and_shows_the_same_text(tmp_path: object) -> None:
    sched = Scheduler(Resources(4000, 4096), [QueueSpec("q", Resources(4000, 4096))])
    job = Job(1, JobSpec("t", "q", ("false",), retries=1, backoff_s=10.0), 0.0)
    sched.add(job, 0.0)
    assert sched.schedule_once(1.0).admitted == [job] and job.reason_code is Reason.ADMITTED
    sched.started(1, "h")
    sched.exited(1, 3, 2.0)
    assert (job.reason_code, job.reason_detail) == (Reason.BACKOFF, "exit code 3, retry 1 in 10 s")
    assert job.reason == "retry backoff: exit code 3, retry 1 in 10 s"
    store = SqliteStore(f"{tmp_path}/kf.db")
    try:
        store.put_queue(QueueSpec("q", Resources(4000, 4096)))
        stored_id = store.submit(job.spec, time.time())
        stored = store.get(stored_id)
        assert stored is not None
        stored.reason_code, stored.reason_detail, stored.state = job.reason_code, job.reason_detail, JobState.PENDING
        store.save([stored])
        again = store.get(stored_id)
        assert again is not None and (again.reason_code, again.reason_detail) == (Reason.BACKOFF, job.reason_detail)
        assert job_view(again)["reason"] == "retry backoff: exit code 3, retry 1 in 10 s"
    finally:
        store.close()


def test_a_preempted_job_is_requeued_by_its_code_and_shows_the_texts_it_always_did() -> None:
    sched = Scheduler(Resources(1000, 1024), [QueueSpec("q", Resources(1000, 1024))])
    low = Job(1, JobSpec("t", "q", ("true",), resources=Resources(1000, 100), priority=100), 0.0)
    sched.add(low, 0.0)
    sched.schedule_once(1.0)
    sched.started(1, "h")
    high = Job(2, JobSpec("t", "q", ("true",), resources=Resources(1000, 100), priority=1000), 2.0)
    sched.add(high, 2.0)
    assert sched.schedule_once(3.0).stop == [low] and low.reason_code is Reason.PREEMPTED
    assert high.reason == "preempting 1 job(s)"
    sched.exited(1, 143, 4.0)
    assert low.state is JobState.PENDING and low.preemptions == 1 and low.reason == "preempted"
