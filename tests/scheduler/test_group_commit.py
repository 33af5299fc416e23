"""Group commit on a real SQLite store: concurrent clients share transactions, nothing is acknowledged unrecorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from kubeforge.scheduler.group_commit import GroupCommitter
from kubeforge.scheduler.model import JobSpec
from kubeforge.scheduler.store.base import Submission
from kubeforge.scheduler.store.sqlite import SqliteStore

SPEC = JobSpec("t", "q", ("true",))


class _CountingStore(SqliteStore):
    """A SQLite store that remembers the clients' batches and can be told to fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.failing = False

    def record(self, submissions: Sequence[Submission], now: float) -> list[list[int]]:
        if self.failing:
            raise OSError("disk full")
        self.batches.append(len(submissions))
        return super().record(submissions, now)


async def _submit_in_turns(committer: GroupCommitter, clients: list[str], each: int) -> list[int]:
    async def one_client(client: str) -> list[int]:
        return [await committer.submit(SPEC, client) for _ in range(each)]

    found = await asyncio.gather(*(one_client(client) for client in clients))
    return [job_id for ids in found for job_id in ids]


def test_concurrent_clients_share_commits_and_every_acknowledged_job_is_recorded(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path / "kf.db")
    committer = GroupCommitter(store)
    ids = asyncio.run(_submit_in_turns(committer, ["a:1", "b:2"], each=40))
    committer.close()
    assert len(set(ids)) == 80 and sum(store.batches) == 80
    assert max(store.batches) == 2  # the two clients' submissions shared commits
    assert {job.id for job in store.list_jobs(limit=100)} == set(ids)
    store.close()


def test_a_failed_transaction_fails_every_submission_in_it(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path / "kf.db")
    store.failing = True
    committer = GroupCommitter(store)
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(_submit_in_turns(committer, ["a:1", "b:2"], each=1))
    committer.close()
    assert store.list_jobs() == []
    store.close()
