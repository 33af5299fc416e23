"""The dispatcher at scale (run by scheduler.py in a fresh interpreter, so RSS is its own).

The real `Dispatcher` on a SQLite store: restore, then steps with the inbox, polling and the queue
refresh every QUEUE_REFRESH_S, against a no-op backend that ends a few running jobs each poll.

- scale_restore_s: `Dispatcher.start` (lease, queues, every pending job) over SCALE_QUEUES queues and
  SCALE_PENDING pending jobs, as a restarted dispatcher finds them in the store;
- scale_step_p99_ms / scale_step_median_ms: `Dispatcher.step` over SCALE_STEPS steps; each step
  claims SUBMITS_PER_STEP new submissions and polls; halfway one queue changes in the store;
- the same in CPU seconds of this process (scale_restore_cpu_s, scale_step_cpu_p99_ms): on a shared machine
  the wall-clock figures include waiting for a core, the CPU figures do not;
- scale_rss_mb (VmRSS after the steps) and scale_peak_rss_mb (VmHWM, the restore's peak included);
  scale_bytes_per_pending: the growth of VmRSS from just before the restore to after the steps, per pending job;
- queue_refresh_ms: one queue refresh with REFRESH_QUEUES unchanged queues (median of REFRESHES).

The pending jobs are 80 % array tasks (arrays of ARRAY_TASKS sharing one stored spec) and 20 %
single jobs, each with its own spec. The scale is set by KUBEFORGE_BENCH_SCALE_QUEUES and
KUBEFORGE_BENCH_SCALE_PENDING (defaults 10,000 and 1,000,000); the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import PolledLaunch
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.logs import LogSlice
from kubeforge.scheduler.model import Job, JobSpec, QueueSpec
from kubeforge.scheduler.store.base import SqlStore
from kubeforge.scheduler.store.sqlite import SqliteStore

SCALE_QUEUES = int(os.environ.get("KUBEFORGE_BENCH_SCALE_QUEUES", "10000"))
SCALE_PENDING = int(os.environ.get("KUBEFORGE_BENCH_SCALE_PENDING", "1000000"))
SCALE_STEPS = int(os.environ.get("KUBEFORGE_BENCH_SCALE_STEPS", "200"))
QUEUES_PER_COHORT = 20
ARRAY_TASKS = 100
ARRAY_SHARE = 0.8
SUBMITS_PER_STEP = 10
ENDS_PER_POLL = 20
CAPACITY = Resources(1000 * 1000, 1 << 30, 500)
REFRESH_QUEUES = 1000
REFRESHES = 200
_INSERT = (
    "INSERT INTO jobs (team, queue, spec, state, created_at, inbox, array_id, array_index) "
    "VALUES (?, ?, ?, 'pending', ?, 0, ?, ?)"
)


class NoopBackend(PolledLaunch):
    """Runs nothing: every launch is accepted, and each poll ends the ENDS_PER_POLL oldest with exit code 0."""

    name: ClassVar[str] = "noop"

    def __init__(self, capacity: Resources) -> None:
        self.capacity = capacity
        self.running: dict[str, None] = {}

    def submit(self, job: Job) -> JobHandle:
        self.running[job.launch_key] = None
        return JobHandle(self.name, job.launch_key, job.launch_key)

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        ending = set(list(self.running)[:ENDS_PER_POLL])
        for handle in ending:
            del self.running[handle]
        return {job_id: 0 for job_id, handle in handles.items() if handle in ending}

    def suspend(self, handle: JobHandle) -> None:
        self.running.pop(handle.id, None)
        self.running[handle.id] = None  # ends at a later poll, as a graceful stop does

    def cancel(self, handle: JobHandle) -> None:
        self.running.pop(handle.id, None)

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        raise NotImplementedError("the no-op backend keeps no logs")

    def reason(self, handle: str) -> str:
        return ""


def make_queues(count: int) -> list[QueueSpec]:
    """`count` queues, QUEUES_PER_COHORT to a cohort."""
    return [
        QueueSpec(
            f"q{i}",
            Resources(4000, 1 << 16, 1),
            cohort=f"c{i // QUEUES_PER_COHORT}",
            borrowing_limit=Resources(2000, 0, 0),
        )
        for i in range(count)
    ]


def spec_for(rng: random.Random, queues: Sequence[QueueSpec], name: str) -> JobSpec:
    """A random job for one of `queues` (named `name`: a single job has its own spec)."""
    return JobSpec(
        f"team{rng.randrange(100)}",
        rng.choice(queues).name,
        ("true",),
        name=name,
        resources=Resources(1000, 256, 0),
        workers=rng.choice((1, 1, 2, 4)),
        priority=rng.choice((100, 500, 1000)),
        max_runtime_s=rng.uniform(600, 7200),
    )


def populate(store: SqlStore, queues: Sequence[QueueSpec], pending: int) -> None:
    """Queues and pending jobs straight into the store's tables, as a restarted dispatcher finds them."""
    store.put_queues(queues)
    rng = random.Random(1)
    rows: list[tuple[object, ...]] = []
    arrays: list[tuple[int, str]] = []
    job_id = 0
    while job_id < pending:
        in_array = rng.random() < ARRAY_SHARE
        spec = spec_for(rng, queues, "" if in_array else f"job{job_id}")
        text = json.dumps(spec.to_dict(), separators=(",", ":"))
        tasks = min(ARRAY_TASKS if in_array else 1, pending - job_id)
        first = job_id + 1
        if in_array:
            arrays.append((first, text))
        for index in range(tasks):
            job_id += 1
            stored = "" if in_array else text
            rows.append((spec.team, spec.queue, stored, float(job_id), first if in_array else None, index))
        if len(rows) >= 100_000:
            _insert(store, rows, arrays)
            rows, arrays = [], []
    _insert(store, rows, arrays)


def _insert(store: SqlStore, rows: list[tuple[object, ...]], arrays: list[tuple[int, str]]) -> None:
    with store.transaction() as cur:
        cur.executemany(_INSERT, rows)
        cur.executemany("INSERT INTO arrays (id, spec) VALUES (?, ?)", arrays)


def _memory_mb(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[int(fraction * (len(ordered) - 1))]


def measure_scale(root: Path) -> dict[str, float]:
    """Restore and step the dispatcher over SCALE_QUEUES queues and SCALE_PENDING pending jobs."""
    store = SqliteStore(root / "scale.db")
    queues = make_queues(SCALE_QUEUES)
    populate(store, queues, SCALE_PENDING)
    store.close()
    store = SqliteStore(root / "scale.db")
    dispatcher = Dispatcher(store, NoopBackend(CAPACITY))
    rss_before_mb = _memory_mb("VmRSS:")
    began, began_cpu = time.perf_counter(), time.process_time()
    dispatcher.start()
    restore_s, restore_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
    rng = random.Random(2)
    timings, cpu_timings = [], []
    for step in range(SCALE_STEPS):
        store.submit_many([spec_for(rng, queues, f"new{step}-{n}") for n in range(SUBMITS_PER_STEP)], time.time())
        if step == SCALE_STEPS // 2:  # one queue edited while the dispatcher runs
            store.put_queue(QueueSpec("q0", Resources(8000, 1 << 16, 1), cohort="c0"))
        began, began_cpu = time.perf_counter(), time.process_time()
        dispatcher.step()
        timings.append((time.perf_counter() - began) * 1000)
        cpu_timings.append((time.process_time() - began_cpu) * 1000)
    figures = {
        "scale_step_p99_ms": _percentile(timings, 0.99),
        "scale_step_median_ms": statistics.median(timings),
        "scale_step_cpu_p99_ms": _percentile(cpu_timings, 0.99),
        "scale_step_cpu_median_ms": statistics.median(cpu_timings),
        "scale_restore_s": restore_s,
        "scale_restore_cpu_s": restore_cpu_s,
        "scale_rss_mb": _memory_mb("VmRSS:"),
        "scale_peak_rss_mb": _memory_mb("VmHWM:"),
        "scale_bytes_per_pending": (_memory_mb("VmRSS:") - rss_before_mb) * 2**20 / SCALE_PENDING,
        "scale_pending": SCALE_PENDING,
        "scale_queues": SCALE_QUEUES,
        "scale_steps": SCALE_STEPS,
    }
    store.close()
    return figures


def measure_refresh(root: Path) -> dict[str, float]:
    """One queue refresh of a started dispatcher whose REFRESH_QUEUES queues did not change."""
    store = SqliteStore(root / "refresh.db")
    store.put_queues(make_queues(REFRESH_QUEUES))
    dispatcher = Dispatcher(store, NoopBackend(CAPACITY))
    dispatcher.start()
    timings = []
    for _ in range(REFRESHES):
        began = time.perf_counter()
        dispatcher.refresh_queues(time.time())
        timings.append((time.perf_counter() - began) * 1000)
    store.close()
    return {"queue_refresh_ms": statistics.median(timings), "queue_refresh_queues": REFRESH_QUEUES}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kf-scale-") as folder:
        figures = measure_refresh(Path(folder))
        figures.update(measure_scale(Path(folder)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
