"""The scheduler API served by its own HTTP server on a loopback port in a thread, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.http_server import serving_in_thread
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store import open_store

ADMIN_TOKEN = "admin-token-0123456789"


@contextmanager
def serving(app: SchedulerAPI) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    with serving_in_thread(app) as url:
        yield url


@contextmanager
def training_scheduler(folder: Path) -> Iterator[str]:
    """A scheduler with queue `train` (4 CPUs, 16 GiB) whose dispatcher runs jobs with the local backend
    under `folder`; yields its URL. ADMIN_TOKEN is its admin's token."""
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(str(folder / "kf.db"))
    store.add_token(ADMIN_TOKEN, "admin", admin=True)
    store.put_queue(QueueSpec("train", Resources(4000, 16384)))
    dispatcher = Dispatcher(store, LocalBackend(folder / "launches", capacity=Resources(4000, 16384)))
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with serving(SchedulerAPI(store, dispatcher, logs=dispatcher.backend.log_range)) as url:
            yield url
    finally:
        stop.set()
        thread.join(timeout=10)
        store.close()


__all__ = ["ADMIN_TOKEN", "serving", "training_scheduler"]
