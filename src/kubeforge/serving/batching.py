"""Adaptive batching: concurrent requests for one model share a forward pass of the network.

Each request brings its rows already preprocessed. A collector task per model takes the
waiting requests, waits up to `max_wait_ms` for more while the batch is below `max_batch_size`
rows and has fewer requests than the last batch carried (the clients of the last batch are
expected back: with N clients in a closed loop each batch goes as soon as the N are in, and a
lone client never pays the wait; the first batch waits the whole window), runs one forward
pass (on the event loop up to 256 rows, or while the passes measured so far say it takes under
2 ms, where a thread hop would cost about as much as the pass; in the inference thread beyond)
and hands every request its own slice. While a batch runs, new requests queue up, so batches
grow with the load. The queue is bounded: beyond `max_queue` waiting requests a request is
refused at once (`Overloaded`), never parked.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, Prediction
from kubeforge.serving.metrics import ServerMetrics

INLINE_FORWARD_ROWS = 256
INLINE_FORWARD_S = 0.002
_RATE_WEIGHT = 0.2  # weight of the newest pass in the running seconds-per-row estimate


@dataclass(frozen=True)
class BatchingOptions:
    """Largest batch in rows, longest wait for a batch to fill, most requests allowed to wait."""

    max_batch_size: int = 64
    max_wait_ms: float = 1.0
    max_queue: int = 512

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise InputError(f"max_batch_size: must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise InputError(f"max_wait_ms: must be between 0 and 10000, got {self.max_wait_ms}")
        if self.max_queue < 1:
            raise InputError(f"max_queue: must be at least 1, got {self.max_queue}")


class Overloaded(Exception):
    """The model's queue is full: the request was refused and should be retried later."""

    def __init__(self, model: str, waiting: int):
        super().__init__(f"model '{model}' is overloaded ({waiting} requests waiting); retry after a short pause")


@dataclass
class _Waiting:
    features: np.ndarray
    future: asyncio.Future[Prediction]


class ModelBatcher:
    """Batches forward passes of one model; `predict` is called from the event loop."""

    def __init__(self, model: LoadedModel, options: BatchingOptions, metrics: ServerMetrics, executor: Executor):
        self.model = model
        self.options = options
        self._metrics = metrics
        self._executor = executor
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._arrived = asyncio.Event()
        self._closing = False
        self._collector: asyncio.Task[None] | None = None
        self._last_batch_requests: int | None = None  # how many requests to expect back; unknown at first
        self._seconds_per_row: float | None = None  # running estimate from the forward passes so far
        self._depth = metrics.queue_depth.labels(model.name)
        self._batch_rows = metrics.batch_size.labels(model.name)

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._waiting)

    async def predict(self, features: np.ndarray) -> Prediction:
        """Predict preprocessed rows as part of the next batch; raises Overloaded when the queue is full."""
        if self._closing:
            raise Overloaded(self.model.name, len(self._waiting))
        if len(self._waiting) >= self.options.max_queue:
            raise Overloaded(self.model.name, len(self._waiting))
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect())
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(features, future))
        self._depth.set(len(self._waiting))
        self._arrived.set()
        return await future

    async def close(self) -> None:
        """Refuse new requests, answer every waiting one, then stop the collector."""
        self._closing = True
        self._arrived.set()
        if self._collector is not None:
            await self._collector

    async def _collect(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            await self._fill()
            batch = self._take()
            self._last_batch_requests = len(batch)
            self._depth.set(len(self._waiting))
            await self._run(batch)

    async def _fill(self) -> None:
        """Wait up to max_wait_ms for max_batch_size rows or for as many requests as the last batch carried."""
        expected = self._last_batch_requests
        if expected is not None and len(self._waiting) >= expected:
            await asyncio.sleep(0)  # requests the loop has already read still join; nothing else is awaited
            return
        deadline = time.monotonic() + self.options.max_wait_ms / 1000
        while not self._closing and self._waiting_rows() < self.options.max_batch_size:
            if expected is not None and len(self._waiting) >= expected:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _waiting_rows(self) -> int:
        return sum(len(waiting.features) for waiting in self._waiting)

    def _take(self) -> list[_Waiting]:
        batch = [self._waiting.popleft()]
        rows = len(batch[0].features)
        while self._waiting and rows + len(self._waiting[0].features) <= self.options.max_batch_size:
            rows += len(self._waiting[0].features)
            batch.append(self._waiting.popleft())
        return batch

    async def _run(self, batch: list[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        live = [waiting for waiting in batch if not waiting.future.done()]
        if not live:
            return
        features = live[0].features if len(live) == 1 else np.concatenate([w.features for w in live])
        self._batch_rows.observe(len(features))
        try:
            if self._inline(len(features)):  # a thread hop costs about as much as a short forward pass
                prediction, seconds = _timed_predict(self.model, features)
            else:
                prediction, seconds = await loop.run_in_executor(self._executor, _timed_predict, self.model, features)
        except Exception as exc:
            if len(live) == 1:
                _settle(live[0].future, exc)
                return
            for waiting in live:  # one request may carry what breaks the network: isolate it
                await self._run([waiting])
            return
        self._learn(len(features), seconds)
        start = 0
        for waiting in live:
            stop = start + len(waiting.features)
            _settle(waiting.future, _rows(prediction, start, stop))
            start = stop

    def _inline(self, rows: int) -> bool:
        """Whether a pass over `rows` rows should run on the event loop: few rows, or expected to be short."""
        if rows <= INLINE_FORWARD_ROWS:
            return True
        return self._seconds_per_row is not None and rows * self._seconds_per_row <= INLINE_FORWARD_S

    def _learn(self, rows: int, seconds: float) -> None:
        rate = seconds / rows
        estimate = self._seconds_per_row
        self._seconds_per_row = rate if estimate is None else estimate + _RATE_WEIGHT * (rate - estimate)


def _timed_predict(model: LoadedModel, features: np.ndarray) -> tuple[Prediction, float]:
    started = time.perf_counter()
    prediction = model.predict_features(features)
    return prediction, time.perf_counter() - started


def _settle(future: asyncio.Future[Prediction], outcome: Prediction | BaseException) -> None:
    if future.done():  # the client went away
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _rows(prediction: Prediction, start: int, stop: int) -> Prediction:
    return Prediction(
        labels=prediction.labels[start:stop],
        probabilities=None if prediction.probabilities is None else prediction.probabilities[start:stop],
        values=None if prediction.values is None else prediction.values[start:stop],
    )


__all__ = ["INLINE_FORWARD_ROWS", "BatchingOptions", "ModelBatcher", "Overloaded"]
