"""Group commit of submissions: concurrent requests share one transaction, each acknowledged after it.

The API's event loop hands validated specs to one writer thread and awaits a future per
job. The writer takes every submission waiting at that moment, inserts them in a single
transaction, and only after the commit resolves the futures with the new ids (or with
the error when the transaction failed, so no job is acknowledged that was not recorded).
While one batch commits, the event loop keeps parsing the next requests.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeforge.scheduler.model import JobSpec
from kubeforge.scheduler.store.base import SqlStore

MAX_BATCH = 1000


@dataclass
class _Pending:
    spec: JobSpec
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


class GroupCommitter:
    """One writer thread that records submissions in batches; `submit` is awaited by request handlers."""

    def __init__(self, store: SqlStore, on_commit: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kubeforge-group-commit", daemon=True)
        self._thread.start()

    async def submit(self, spec: JobSpec) -> int:
        """Record `spec` durably (with whatever else is waiting); returns its job id after the commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put(_Pending(spec, loop, future))
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
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            ids = self.store.submit_many([pending.spec for pending in batch], time.time())
        except Exception as exc:  # every waiting request learns that its job was not recorded
            outcomes: list[int | BaseException] = [exc] * len(batch)
        else:
            outcomes = list(ids)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int | BaseException]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, settled in by_loop.items():  # one wake-up of each event loop per batch
            loop.call_soon_threadsafe(_settle, settled)
        if self.on_commit is not None and not isinstance(outcomes[0], BaseException):
            self.on_commit()


def _settle(settled: list[tuple[asyncio.Future[int], int | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


__all__ = ["MAX_BATCH", "GroupCommitter"]
