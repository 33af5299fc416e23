"""The store's own guarantees on SQLite and PostgreSQL: migrations, the lease, claims and durable fields."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.resources import Resources
from kubeforge.scheduler.store import open_store
from kubeforge.scheduler.store.schema import LATEST_VERSION


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
