"""One scheduling cycle with 100,000 pending jobs across 1,000 queues: p99 time and RSS (run by scheduler.py).

The jobs are loaded as a restarting dispatcher restores them, which then (as `Dispatcher.start`
does) moves them out of the cyclic garbage collector's full passes with `gc.freeze()`. The scale is set by
KUBEFORGE_BENCH_CYCLE_QUEUES, KUBEFORGE_BENCH_CYCLE_PENDING and KUBEFORGE_BENCH_CYCLE_CYCLES (defaults 1,000,
100,000 and 100). `cycle_rss_mb` is VmRSS after the cycles; `cycle_bytes_per_pending` is the growth of VmRSS
from before the jobs were made to after the cycles, per pending job.
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
from pathlib import Path

from kubeforge.resources import Resources
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec
from kubeforge.scheduler.scheduler import Scheduler

QUEUES = int(os.environ.get("KUBEFORGE_BENCH_CYCLE_QUEUES", "1000"))
PENDING = int(os.environ.get("KUBEFORGE_BENCH_CYCLE_PENDING", "100000"))
CYCLES = int(os.environ.get("KUBEFORGE_BENCH_CYCLE_CYCLES", "100"))


def _rss_kb() -> int:
    return next(
        int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")
    )


def main() -> None:
    rng = random.Random(1)
    queues = [
        QueueSpec(f"q{i}", Resources(4000, 1 << 16, 1), cohort=f"c{i % 50}", borrowing_limit=Resources(2000, 0, 0))
        for i in range(QUEUES)
    ]
    scheduler = Scheduler(Resources(1000 * 1000, 1 << 30, 500), queues)
    rss_before_kb = _rss_kb()
    for job_id in range(1, PENDING + 1):
        queue = f"q{rng.randrange(QUEUES)}"
        spec = JobSpec(
            f"team{rng.randrange(100)}",
            queue,
            ("true",),
            resources=Resources(1000, 256, 0),
            workers=rng.choice((1, 1, 2, 4)),
            priority=rng.choice((100, 500, 1000)),
            max_runtime_s=rng.uniform(60, 7200),
        )
        scheduler.add(Job(job_id, spec, created_at=float(job_id)), 0.0)
    gc.freeze()
    now = 1.0
    scheduler.schedule_once(now)  # fill the cluster once
    timings = []
    for _ in range(CYCLES):
        now += 1.0
        running = [job for job in scheduler.cache.holding.values() if job.state is not JobState.STOPPING]
        for job in rng.sample(running, min(20, len(running))):
            scheduler.started(job.id, "h")
            scheduler.exited(job.id, 0, now)
        start = time.perf_counter()
        scheduler.schedule_once(now)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    rss_kb = _rss_kb()
    print(
        json.dumps(
            {
                "cycle_p99_ms": timings[int(0.99 * (len(timings) - 1))],
                "cycle_median_ms": timings[len(timings) // 2],
                "cycle_rss_mb": rss_kb / 1024,
                "cycle_bytes_per_pending": (rss_kb - rss_before_kb) * 1024 / PENDING,
                "cycle_pending": len(scheduler.queues),
                "cycle_queues": QUEUES,
            }
        )
    )


if __name__ == "__main__":
    main()
