"""The scheduler API served by its own HTTP server on a loopback port in a thread, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.http_server import serving_in_thread


@contextmanager
def serving(app: SchedulerAPI) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    with serving_in_thread(app) as url:
        yield url


__all__ = ["serving"]
