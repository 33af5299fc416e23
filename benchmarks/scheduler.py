"""kubeforge's scheduler against SLURM on the same machine, in the same run.

- submit: jobs durably accepted per second through the REST API (one job per request,
  as sbatch is one job per call, over kept-alive HTTP connections), against `sbatch
  --parsable` calls per second; both with the same number of parallel submitters (each
  kubeforge submitter its own client process, each SLURM submitter a thread running sbatch
  processes), SLURM jobs held so neither side runs them. Durably: committed to SQLite in WAL mode before the
  answer, with synchronous=NORMAL (the store's default: the commit is written to the WAL
  file, so it survives the server being killed) for the ratio, and again with
  synchronous=FULL (the WAL synced to disk at each commit, surviving power loss) as a figure.
- array: job-array tasks accepted per second, one array of ARRAY_TASKS per request
  (`POST /v1/arrays`) against one `sbatch --array=0-N` per call, same submitters.
- end to end: 2,000 trivial jobs from first submit to last completion, SLURM (OverSubscribe
  FORCE:16, batch_sched_delay=0, sched_min_interval=0, backfill every second) against the
  local backend with the same number of concurrent job slots (32 on 2 cores).
- cycle: one scheduling cycle with 100,000 pending jobs across 1,000 queues (p99, RSS).
- scale: the dispatcher's restore and steps with 10,000 queues and 1,000,000 pending jobs, and a
  refresh of 1,000 unchanged queues (see benchmarks_scheduler_scale.py; goals: step p99 <= 50 ms,
  restore <= 15 s, RSS <= 600 MB, refresh <= 5 ms).
The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Barrier
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from slurm_cluster import running_slurm

from kubeforge.resources import Resources
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore
from kubeforge.scheduler_client import SchedulerClient

SUBMITTERS = 2
SUBMIT_JOBS = 3000
SBATCH_JOBS = 300
ARRAYS = 10
ARRAY_TASKS = 1000
E2E_JOBS = 2000
SLOTS = 32
REPEATS = 3
ADMIN = "bench-admin-token-0123456789"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(
    root: Path, dispatch: bool, synchronous: str = "NORMAL"
) -> tuple[subprocess.Popen[bytes], str, SqliteStore]:
    db = root / "kf.db"
    store = SqliteStore(db)
    store.add_token(ADMIN, "bench", admin=True)
    store.put_queue(QueueSpec("bench", Resources(2000, 1 << 20)))
    port = _port()
    store_url = f"sqlite:///{db}?synchronous={synchronous}"
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--store", store_url, "--port", str(port)]
    command += ["--state-dir", str(root / "state"), "--cpu", "2", "--memory", "1Ti"]
    if not dispatch:
        command.append("--no-dispatch")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    return process, url, store


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def _submitter(
    url: str, count: int, spec: dict[str, object], indices: str, start: Barrier, spans: SimpleQueue[tuple[float, float]]
) -> None:
    """One submitter process: `count` submissions (arrays of `indices` when given) on one kept-alive connection."""
    with SchedulerClient(url, ADMIN) as client:
        start.wait()
        began = time.monotonic()
        for _ in range(count):
            if indices:
                client.submit_array(spec, indices)
            else:
                client.submit(spec)
        spans.put((began, time.monotonic()))


def _submit_in_parallel(url: str, count: int, spec: dict[str, object], indices: str = "") -> float:
    """Seconds for `count` submissions shared by SUBMITTERS client processes (separate processes, as separate
    users are: one Python client's threads would take turns on its interpreter lock), started together."""
    context = multiprocessing.get_context("spawn")
    start, spans = context.Barrier(SUBMITTERS), context.SimpleQueue()
    workers = [
        context.Process(target=_submitter, args=(url, count // SUBMITTERS, spec, indices, start, spans))
        for _ in range(SUBMITTERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        raise RuntimeError(f"a submitter failed: exit codes {[worker.exitcode for worker in workers]}")
    found = [spans.get() for _ in workers]
    return max(end for _, end in found) - min(began for began, _ in found)


def _submit_many(url: str, count: int, spec: dict[str, object]) -> float:
    """Seconds for `count` job submissions, one job per request."""
    return _submit_in_parallel(url, count, spec)


def _submit_arrays(url: str, arrays: int, spec: dict[str, object]) -> float:
    """Seconds for `arrays` array submissions of ARRAY_TASKS tasks each."""
    return _submit_in_parallel(url, arrays, spec, f"0-{ARRAY_TASKS - 1}")


def _sbatch_many(count: int, env: dict[str, str], extra: list[str]) -> float:
    per = count // SUBMITTERS
    command = ["sbatch", "--parsable", "--output=/dev/null", *extra, "--wrap=true"]

    def worker(_: int) -> None:
        for _ in range(per):
            subprocess.run(command, env=env, check=True, capture_output=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(worker, range(SUBMITTERS)))
    return time.perf_counter() - start


def _squeue_count(env: dict[str, str]) -> int:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, check=True).stdout
    return len(out.split())


def _kubeforge_submit_rate(synchronous: str) -> float:
    root = Path(tempfile.mkdtemp(prefix="kf-bench-"))
    process, url, store = _server(root, dispatch=False, synchronous=synchronous)
    try:
        seconds = _submit_many(url, SUBMIT_JOBS, {"queue": "bench", "command": ["true"]})
        assert len(store.list_jobs(limit=SUBMIT_JOBS + 1)) == SUBMIT_JOBS
        return SUBMIT_JOBS / seconds
    finally:
        _stop(process)
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def _cancel_all_slurm_jobs(env: dict[str, str]) -> None:
    """Cancel the held benchmark jobs and wait until SLURM has forgotten them."""
    subprocess.run(["scancel", "--user=root"], env=env, check=False)
    while _squeue_count(env):
        time.sleep(0.2)


def measure_submit(env: dict[str, str]) -> dict[str, float]:
    kubeforge_rates, full_sync_rates, slurm_rates = [], [], []
    for _ in range(REPEATS):
        kubeforge_rates.append(_kubeforge_submit_rate("NORMAL"))
        full_sync_rates.append(_kubeforge_submit_rate("FULL"))
        slurm_rates.append(SBATCH_JOBS / _sbatch_many(SBATCH_JOBS, env, ["--hold"]))
        _cancel_all_slurm_jobs(env)
    return {
        "kubeforge_submit_per_s": statistics.median(kubeforge_rates),
        "kubeforge_submit_full_sync_per_s": statistics.median(full_sync_rates),
        "sbatch_per_s": statistics.median(slurm_rates),
    }


def measure_array(env: dict[str, str]) -> dict[str, float]:
    kubeforge_rates, slurm_rates = [], []
    tasks = ARRAYS * ARRAY_TASKS
    for _ in range(REPEATS):
        root = Path(tempfile.mkdtemp(prefix="kf-bench-"))
        process, url, store = _server(root, dispatch=False)
        try:
            seconds = _submit_arrays(url, ARRAYS, {"queue": "bench", "command": ["true"]})
            assert len(store.list_jobs(limit=tasks + 1)) == tasks
            kubeforge_rates.append(tasks / seconds)
        finally:
            _stop(process)
            store.close()
            shutil.rmtree(root, ignore_errors=True)
        slurm_rates.append(tasks / _sbatch_many(ARRAYS, env, ["--hold", f"--array=0-{ARRAY_TASKS - 1}"]))
        _cancel_all_slurm_jobs(env)
    return {
        "kubeforge_array_tasks_per_s": statistics.median(kubeforge_rates),
        "sbatch_array_tasks_per_s": statistics.median(slurm_rates),
    }


def measure_end_to_end(env: dict[str, str]) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="kf-bench-"))
    process, url, store = _server(root, dispatch=True)
    try:
        start = time.perf_counter()
        cpu = f"{2000 // SLOTS}m"
        _submit_many(url, E2E_JOBS, {"queue": "bench", "command": ["true"], "resources": {"cpu": cpu, "memory": 1}})
        while list(store.active_jobs()):
            time.sleep(0.05)
        kubeforge_s = time.perf_counter() - start
        succeeded = sum(1 for job in store.list_jobs(limit=E2E_JOBS + 1) if job.state.value == "succeeded")
        assert succeeded == E2E_JOBS, succeeded
    finally:
        _stop(process)
        store.close()
        shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    _sbatch_many(E2E_JOBS, env, ["--cpus-per-task=1", "--mem=16M"])
    while _squeue_count(env):
        time.sleep(0.2)
    slurm_s = time.perf_counter() - start
    return {"kubeforge_end_to_end_s": kubeforge_s, "slurm_end_to_end_s": slurm_s}


def measure_cycle() -> dict[str, float]:
    """Run in a fresh interpreter so RSS is the scheduler's own."""
    return _fresh_interpreter("benchmarks_scheduler_cycle")


def measure_scale() -> dict[str, float]:
    """The dispatcher over 10,000 queues and 1,000,000 pending jobs (KUBEFORGE_BENCH_SCALE_* set smaller runs)."""
    return _fresh_interpreter("benchmarks_scheduler_scale")


def _fresh_interpreter(module: str) -> dict[str, float]:
    """The JSON object on the last line printed by `module`'s main(), run in a fresh interpreter."""
    code = f"import {module} as m; m.main()"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    random.seed(0)
    cycle = measure_cycle()
    print(f"cycle: {cycle}", flush=True)
    scale = measure_scale()
    print(f"scale: {scale}", flush=True)
    with running_slurm(oversubscribe=16) as cluster:
        env = {**os.environ, **cluster.env}
        submit = measure_submit(env)
        print(f"submit: {submit}", flush=True)
        array = measure_array(env)
        print(f"array: {array}", flush=True)
        end_to_end = measure_end_to_end(env)
        print(f"end to end: {end_to_end}", flush=True)
    figures = {
        **submit,
        **array,
        "array_submit_vs_slurm_array": array["kubeforge_array_tasks_per_s"] / array["sbatch_array_tasks_per_s"],
        "array_tasks": ARRAY_TASKS,
        **end_to_end,
        **cycle,
        **scale,
        "submitters": SUBMITTERS,
        "slots": SLOTS,
        "submit_full_sync_vs_slurm": submit["kubeforge_submit_full_sync_per_s"] / submit["sbatch_per_s"],
        "sqlite_synchronous": "NORMAL",
    }
    ratios = {
        "submit_vs_slurm": submit["kubeforge_submit_per_s"] / submit["sbatch_per_s"],
        "end_to_end_vs_slurm": end_to_end["slurm_end_to_end_s"] / end_to_end["kubeforge_end_to_end_s"],
    }
    print(json.dumps({"benchmark": "scheduler", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
