"""The store's own guarantees on SQLite and PostgreSQL: migrations, the lease, claims and durable fields."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from kubeforge.resources import Resources
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store import open_store
from kubeforge.scheduler.store.base import FINISHED_SINCE_SQL, HELD_NOW_SQL, Submission
from kubeforge.scheduler.store.schema import LATEST_VERSION, statements
from kubeforge.scheduler.store.sqlite import SqliteStore


def test_migrations_apply_once_and_record_every_version(store_url: str) -> None:
    first = open_store(store_url)
    second = open_store(store_url)  # a replica starting later finds the schema in place
    assert second.migrate() == LATEST_VERSION
    with first.transaction() as cur:
        versions = [row[0] for row in cur.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
    assert versions == list(range(1, LATEST_VERSION + 1))
    first.close()
    second.close()


def test_one_lease_at_a_time_and_it_passes_on_when_the_holder_closes(store_url: str) -> None:
    holder, standby = open_store(store_url), open_store(store_url)
    assert holder.acquire_lease()
    assert not standby.acquire_lease()
    holder.close()
    assert standby.acquire_lease()
    standby.close()


def test_concurrent_claimers_take_each_job_exactly_once(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(3)]
    stores[0].put_queue(QueueSpec("q", Resources(1000, 1024)))
    ids = [stores[0].submit(JobSpec("t", "q", ("true",)), time.time()) for _ in range(300)]
    claimed: Counter[int] = Counter()
    lock = threading.Lock()

    def claim(store_index: int) -> None:
        for _ in range(40):
            jobs = stores[store_index].claim_inbox(limit=7)
            with lock:
                claimed.update(job.id for job in jobs)

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(claimed) == set(ids)
    assert max(claimed.values()) == 1
    for store in stores:
        store.close()


def test_a_cancel_after_the_claim_comes_back_through_the_inbox(store_url: str) -> None:
    store = open_store(store_url)
    store.put_queue(QueueSpec("q", Resources(1000, 1024)))
    job_id = store.submit(JobSpec("t", "q", ("true",)), time.time())
    (job,) = store.claim_inbox()
    assert store.claim_inbox() == []
    assert store.request_cancel(job_id)
    (again,) = store.claim_inbox()
    assert again.id == job_id and again.cancel_requested
    job.state, job.finished_at, job.reason = JobState.CANCELLED, 5.0, "cancelled"
    store.save([job])
    assert not store.request_cancel(job_id)  # finished jobs refuse
    stored = store.get(job_id)
    assert stored is not None and stored.state is JobState.CANCELLED and stored.finished_at == 5.0
    store.close()


def test_an_array_is_recorded_in_one_transaction_among_single_jobs_and_cancelled_as_one(store_url: str) -> None:
    store = open_store(store_url)
    spec = JobSpec("t", "q", ("true",))
    single, array, after = store.record([Submission(spec), Submission(spec, (3, 5, 7)), Submission(spec)], time.time())
    assert len(single) == 1 and len(array) == 3 and len(after) == 1 and single[0] < array[0] < after[0]
    claimed = {job.id: (job.array_id, job.array_index) for job in store.claim_inbox()}
    assert claimed == {
        single[0]: (None, None),
        array[0]: (array[0], 3),
        array[1]: (array[0], 5),
        array[2]: (array[0], 7),
        after[0]: (None, None),
    }
    first = store.array_tasks(array[0])[0]
    first.state, first.finished_at = JobState.SUCCEEDED, 5.0
    store.save([first])
    assert store.request_cancel_array(array[0]) == array[1:]  # the finished task is left alone
    assert {job.id for job in store.claim_inbox() if job.cancel_requested} == set(array[1:])
    assert store.array_tasks(single[0]) == [] and store.request_cancel_array(single[0]) == []
    store.close()


def test_usage_history_reads_the_jobs_held_in_its_window_newest_first_up_to_its_limit(store_url: str) -> None:
    store = open_store(store_url)
    ids = store.submit_many([JobSpec("t", "q", ("true",))] * 6, 0.0)
    jobs = {job.id: job for job in store.claim_inbox()}
    # (admitted_at, finished_at): ended before the window, never admitted, held now, ended in the window
    times = [(1.0, 5.0), (None, None), (20.0, None), (8.0, 12.0), (2.0, 10.0), (30.0, None)]
    for job_id, (admitted, finished) in zip(ids, times, strict=True):
        jobs[job_id].admitted_at, jobs[job_id].finished_at = admitted, finished
        if finished is not None:
            jobs[job_id].state = JobState.SUCCEEDED
    store.save(jobs.values())
    assert [job.id for job in store.held_since(10.0, 10)] == [ids[5], ids[4], ids[3], ids[2]]
    assert [job.id for job in store.held_since(10.0, 2)] == [ids[5], ids[4]]  # the newest, held or not
    assert [job.id for job in store.held_since(11.0, 10)] == [ids[5], ids[3], ids[2]]
    store.close()


def test_usage_history_searches_its_index_instead_of_reading_every_job(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kf.db'}")
    store.close()
    plans = []
    with sqlite3.connect(tmp_path / "kf.db") as db:
        for query, parameters in ((HELD_NOW_SQL, (5,)), (FINISHED_SINCE_SQL, (1.0, 5))):
            plans.append(" ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + query, parameters)))
    assert all("USING INDEX jobs_finished" in plan for plan in plans), plans


def test_tokens_queues_and_fair_share_round_trip(store_url: str) -> None:
    store = open_store(store_url)
    store.add_token("team-token-0123456789", "alice")
    assert store.identify("team-token-0123456789") == ("alice", False)
    assert store.identify("another-token-0123456789") is None
    spec = QueueSpec("gpu", Resources(4000, 8192, 2), cohort="c", borrowing_limit=Resources(1000, 0, 1))
    store.put_queue(spec)
    store.put_queue(spec)
    assert store.queues() == [spec]
    assert store.delete_queue("gpu") and not store.delete_queue("gpu")
    store.save_fair_share({"alice": 0.25, "bob": 1.5}, 100.0)
    assert store.fair_share() == {"alice": (0.25, 100.0), "bob": (1.5, 100.0)}
    store.close()


def test_unknown_store_url_names_the_valid_forms() -> None:
    from kubeforge.errors import InputError

    with pytest.raises(InputError, match="sqlite:///PATH"):
        open_store("mysql://somewhere/db")


@pytest.mark.parametrize(("option", "level"), [("", 1), ("?synchronous=NORMAL", 1), ("?synchronous=full", 2)])
def test_sqlite_synchronous_level_comes_from_the_url(tmp_path: Path, option: str, level: int) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kf.db'}{option}")
    with store.transaction() as cur:
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == level
    store.close()


def test_unknown_sqlite_options_are_named() -> None:
    from kubeforge.errors import InputError

    with pytest.raises(InputError, match=r"unknown option\(s\) \['sync'\]; valid: synchronous=NORMAL\|FULL"):
        open_store("sqlite:///kf.db?sync=off")


def test_sqlite_checkpoints_in_the_background_not_in_the_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    before = (tmp_path / "kf.db").stat().st_size
    store.submit_many([JobSpec("t", "q", ("true",))] * 200, time.time())  # far fewer pages than WAL_SAFETY_PAGES
    deadline = time.monotonic() + 30
    while (tmp_path / "kf.db").stat().st_size == before:  # only a checkpoint writes the database file
        assert time.monotonic() < deadline, "no checkpoint ran"
        time.sleep(0.05)
    assert len(store.list_jobs()) == 200
    store.close()


def test_migration_4_moves_existing_arrays_specs_into_one_row_and_keeps_tokens(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    spec = json.dumps(JobSpec("t", "q", ("echo", "hi"), env={"BIG": "x" * 1000}).to_dict())
    with sqlite3.connect(path) as old:  # a database written by the previous release (schema version 3)
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, body in statements("sqlite", 0)[:3]:
            for statement in body:
                old.execute(statement)
            old.execute("INSERT INTO schema_version VALUES (?)", (version,))
        for index in range(3):
            old.execute(
                "INSERT INTO jobs (id, team, queue, spec, state, created_at, array_id, array_index) "
                "VALUES (?, 't', 'q', ?, 'pending', 1.0, 1, ?)",
                (index + 1, spec, index),
            )
        old.execute(
            "INSERT INTO jobs (id, team, queue, spec, state, created_at) VALUES (4, 't', 'q', ?, 'pending', 1.0)",
            (spec,),
        )
        old.execute("INSERT INTO tokens VALUES (?, 'alice', 0)", (hashlib.sha256(b"old-token-0123456789").hexdigest(),))
    store = SqliteStore(path)
    tasks = store.array_tasks(1)
    assert [task.array_index for task in tasks] == [0, 1, 2] and {task.spec.env["BIG"] for task in tasks} == {
        "x" * 1000
    }
    assert tasks[0].spec is tasks[2].spec  # parsed once
    assert store.get(4) is not None and store.get(4).spec.command == ("echo", "hi")  # type: ignore[union-attr]
    with store.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM jobs WHERE spec = ''").fetchone()[0] == 3
    assert store.identify("old-token-0123456789") == ("alice", False)
    assert [info.team for info in store.list_tokens()] == ["alice"]
    store.close()
