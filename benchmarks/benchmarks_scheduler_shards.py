"""Sharding simulated: one dispatcher over every cohort against two over half the cohorts each, on PostgreSQL.

A shard is a set of whole cohorts (a cohort's queues lend each other quota, so a cohort never spans two
shards) with its share of the capacity, its own dispatcher and its own lease. The store does not yet
partition one database by shard, so each shard here is its own database on the one PostgreSQL server
that also serves the unsharded run: the server, the machine's two cores and the dispatchers' work are
what the shards share. Each dispatcher runs in its own process, as it would on its own host.

The same workload as benchmarks_scheduler_scale.py (cohorts of 20 queues, 80 % array tasks), at
KUBEFORGE_BENCH_SHARD_QUEUES queues and KUBEFORGE_BENCH_SHARD_PENDING pending jobs (defaults 2,000
and 100,000), SHARD_STEPS steps per dispatcher. Run with `make bench-scheduler-shards`; the last line
is one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from multiprocessing.queues import SimpleQueue
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from benchmarks_scheduler_scale import CAPACITY, SUBMITS_PER_STEP, NoopBackend, make_queues, populate, spec_for
from postgres_server import running_postgres

from kubeforge.resources import Resources
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store import open_store

SHARD_QUEUES = int(os.environ.get("KUBEFORGE_BENCH_SHARD_QUEUES", "2000"))
SHARD_PENDING = int(os.environ.get("KUBEFORGE_BENCH_SHARD_PENDING", "100000"))
SHARD_STEPS = int(os.environ.get("KUBEFORGE_BENCH_SHARD_STEPS", "150"))


def _dispatch(url: str, queues: list[QueueSpec], capacity: Resources, results: SimpleQueue[dict[str, float]]) -> None:
    """One shard's dispatcher: restore, then SHARD_STEPS steps with new submissions; its figures to `results`."""
    store = open_store(url)
    dispatcher = Dispatcher(store, NoopBackend(capacity))
    began = time.perf_counter()
    dispatcher.start()
    restore_s = time.perf_counter() - began
    rng = random.Random(url)
    timings, admitted, ended = [], 0, 0
    began = time.perf_counter()
    for step in range(SHARD_STEPS):
        store.submit_many([spec_for(rng, queues, f"new{step}-{n}") for n in range(SUBMITS_PER_STEP)], time.time())
        step_began = time.perf_counter()
        report = dispatcher.step()
        timings.append((time.perf_counter() - step_began) * 1000)
        admitted, ended = admitted + report.admitted, ended + report.ended
    elapsed = time.perf_counter() - began
    store.close()
    timings.sort()
    results.put(
        {
            "restore_s": restore_s,
            "step_p99_ms": timings[int(0.99 * (len(timings) - 1))],
            "step_median_ms": statistics.median(timings),
            "steps_per_s": SHARD_STEPS / elapsed,
            "admitted_per_s": admitted / elapsed,
            "ended_per_s": ended / elapsed,
        }
    )


def _run(shards: list[tuple[str, list[QueueSpec], Resources]]) -> list[dict[str, float]]:
    """The shards' dispatchers, started together, each in its own process."""
    context = multiprocessing.get_context("spawn")
    results: SimpleQueue[dict[str, float]] = context.SimpleQueue()
    workers = [context.Process(target=_dispatch, args=(*shard, results)) for shard in shards]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        raise RuntimeError(f"a shard's dispatcher failed: exit codes {[worker.exitcode for worker in workers]}")
    return [results.get() for _ in workers]


def main() -> None:
    queues = make_queues(SHARD_QUEUES)
    halves = [[queue for queue in queues if int(queue.cohort[1:]) % 2 == shard] for shard in (0, 1)]
    half_capacity = Resources(CAPACITY.cpu_m // 2, CAPACITY.memory_mb // 2, CAPACITY.gpu // 2)
    with running_postgres() as server:
        whole = server.create_database()
        parts = [server.create_database() for _ in halves]
        for url, shard_queues, pending in [(whole, queues, SHARD_PENDING)] + [
            (url, half, SHARD_PENDING // 2) for url, half in zip(parts, halves, strict=True)
        ]:
            store = open_store(url)
            populate(store, shard_queues, pending)
            store.close()
        (one,) = _run([(whole, queues, CAPACITY)])
        two = _run([(url, half, half_capacity) for url, half in zip(parts, halves, strict=True)])
    figures = {
        "one_shard_restore_s": one["restore_s"],
        "one_shard_step_p99_ms": one["step_p99_ms"],
        "one_shard_step_median_ms": one["step_median_ms"],
        "one_shard_admitted_per_s": one["admitted_per_s"],
        "two_shards_restore_s": max(shard["restore_s"] for shard in two),
        "two_shards_step_p99_ms": max(shard["step_p99_ms"] for shard in two),
        "two_shards_step_median_ms": max(shard["step_median_ms"] for shard in two),
        "two_shards_admitted_per_s": sum(shard["admitted_per_s"] for shard in two),
        "shard_queues": SHARD_QUEUES,
        "shard_pending": SHARD_PENDING,
        "shard_steps": SHARD_STEPS,
        "load_average_1m": os.getloadavg()[0],
    }
    ratios = {
        "two_shards_vs_one_admitted_per_s": figures["two_shards_admitted_per_s"] / one["admitted_per_s"],
        "one_vs_two_shards_step_p99": one["step_p99_ms"] / figures["two_shards_step_p99_ms"],
        "one_vs_two_shards_restore": one["restore_s"] / figures["two_shards_restore_s"],
    }
    print(json.dumps({"benchmark": "scheduler_shards", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
