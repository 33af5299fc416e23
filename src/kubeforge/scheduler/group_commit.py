"""Group commit of submissions: those that arrive together share one transaction, each acknowledged after it.

The API's event loop hands validated submissions (one job, or an array of tasks) to one
writer thread and awaits a future for each. The writer takes every submission waiting at
that moment, inserts them in a single transaction, and only after the commit resolves the
futures with the new ids (or with the error when the transaction failed, so no job is
acknowledged that was not recorded). While one batch commits (and waits for the disk),
the event loop keeps parsing the next requests.

When a batch is closed decides how much is shared (after PostgreSQL's commit_delay and
commit_siblings): with only one recently active client the batch is committed at once,
so a lone client is never held back. When other clients submitted recently and have no
submission in the batch yet, the writer waits for them, at most as long as the last
commit took, since waiting is cheaper than a commit of its own. Left alone, concurrent
clients fall into taking turns, one commit each; waiting for siblings lets them share.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeforge.scheduler.model import JobSpec
from kubeforge.scheduler.store.base import SqlStore, Submission

MAX_BATCH = 1000
SIBLING_WINDOW_S = 0.05
"""A client that submitted within this window counts as active: a batch may wait for its next submission."""
MAX_WAIT_S = 0.002
"""The longest a batch waits for active clients, however slow commits are."""


@dataclass
class _Pending:
    submission: Submission
    client: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[int]]


class GroupCommitter:
    """One writer thread that records submissions in batches; `submit` is awaited by request handlers."""

    def __init__(self, store: SqlStore, on_commit: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._last_seen: dict[str, float] = {}
        self._commit_s = 0.0
        self._thread = threading.Thread(target=self._run, name="kubeforge-group-commit", daemon=True)
        self._thread.start()

    async def submit(self, spec: JobSpec, client: str = "") -> int:
        """Record `spec` durably (with whatever else is waiting); returns its job id after the commit.

        `client` names the submitting connection ("" when unknown); it only decides waits for siblings.
        """
        return (await self._record(Submission(spec), client))[0]

    async def submit_array(self, spec: JobSpec, indices: tuple[int, ...], client: str = "") -> list[int]:
        """Record an array of one task per index durably; returns the task ids after the commit."""
        return await self._record(Submission(spec, indices), client)

    async def _record(self, submission: Submission, client: str) -> list[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._queue.put(_Pending(submission, client, loop, future))
        return await future

    def close(self) -> None:
        """Finish what is queued and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._commit(batch)
            if stop:
                return

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """The batch that starts with `first`: all that is waiting, then whatever active clients send
        before the wait for siblings runs out; True as well when the committer is closing."""
        now = time.monotonic()
        for client, seen in list(self._last_seen.items()):
            if now - seen > SIBLING_WINDOW_S:
                del self._last_seen[client]
        batch: list[_Pending] = []
        in_batch: set[str] = set()
        item: _Pending | None = first
        deadline = now + min(self._commit_s, MAX_WAIT_S)
        while item is not None:
            batch.append(item)
            if item.client:
                in_batch.add(item.client)
                self._last_seen[item.client] = now
            if len(batch) >= MAX_BATCH:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(in_batch) >= len(self._last_seen):  # no active client left to wait for
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
        return batch, item is None

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.monotonic()
        try:
            ids = self.store.record([pending.submission for pending in batch], time.time())
        except Exception as exc:  # every waiting request learns that its job was not recorded
            outcomes: list[list[int] | BaseException] = [exc] * len(batch)
        else:
            outcomes = list(ids)
        self._commit_s = time.monotonic() - started
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[list[int]], list[int] | BaseException]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, settled in by_loop.items():  # one wake-up of each event loop per batch
            loop.call_soon_threadsafe(_settle, settled)
        if self.on_commit is not None and not isinstance(outcomes[0], BaseException):
            self.on_commit()


def _settle(settled: list[tuple[asyncio.Future[list[int]], list[int] | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


__all__ = ["MAX_BATCH", "MAX_WAIT_S", "SIBLING_WINDOW_S", "GroupCommitter"]
