"""SIGKILL the dispatcher during dispatch again and again: no job lost, none launched twice.

Each job appends its id to one file (O_APPEND); the dispatcher runs as its own process
and is killed at random moments while it admits, launches and records. A final
dispatcher finishes the rest; every id must then appear exactly once. Against SQLite
(a file lock as lease) and PostgreSQL (an advisory lock that dies with the connection).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from kubeforge.resources import Resources
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store import open_store

JOBS = 600  # 10 at a time (200m each on 2 cores), 0.2 s each: enough work to outlast 20 kills
KILLS = 20


def _dispatcher(db: str, state: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--store", db, "--no-api"]
    command += ["--state-dir", str(state), "--cpu", "2", "--memory", "4Gi"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_during_dispatch_loses_nothing_and_launches_nothing_twice(store_url: str, tmp_path: Path) -> None:
    db, state, runs = store_url, tmp_path / "state", tmp_path / "runs.log"
    store = open_store(db)
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    now = time.time()
    command = ("sh", "-c", f'echo "$KUBEFORGE_JOB_ID" >> {runs}; sleep 0.2')
    ids = [store.submit(JobSpec("t", "q", command, resources=Resources(200, 16)), now) for _ in range(JOBS)]
    rng = random.Random(5)
    kills = 0
    while kills < KILLS:
        process = _dispatcher(db, state)
        time.sleep(rng.uniform(0.25, 0.6))
        outstanding = sum(1 for _ in store.active_jobs())
        os.kill(process.pid, signal.SIGKILL)
        assert outstanding > 0, f"kill {kills + 1} came after all jobs were done; the test needs more work"
        process.wait()
        assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        kills += 1
    finisher = _dispatcher(db, state)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not list(store.active_jobs()):
                break
            time.sleep(0.2)
    finally:
        finisher.terminate()
        finisher.wait()
        if finisher.stderr:
            finisher.stderr.close()
    jobs = [store.get(job_id) for job_id in ids]
    assert all(job is not None and job.state is JobState.SUCCEEDED for job in jobs), [
        (job.id, job.state, job.reason) for job in jobs if job and job.state is not JobState.SUCCEEDED
    ][:5]
    counts = Counter(int(line) for line in runs.read_text().split())
    assert set(counts) == set(ids), "a job never ran"
    assert max(counts.values()) == 1, f"launched twice: {[i for i, n in counts.items() if n > 1][:10]}"
    store.close()
