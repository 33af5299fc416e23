"""kubeforge's scheduler against SLURM on the same machine, in the same run.

- submit: jobs durably accepted per second through the REST API (one job per request,
  as sbatch is one job per call), against `sbatch --parsable` calls per second; both with
  the same number of parallel submitters, SLURM jobs held so neither side runs them.
- end to end: 2,000 trivial jobs from first submit to last completion, SLURM (OverSubscribe
  FORCE:16, batch_sched_delay=0, sched_min_interval=0, backfill every second) against the
  local backend with the same number of concurrent job slots (32 on 2 cores).
- cycle: one scheduling cycle with 100,000 pending jobs across 1,000 queues (p99, RSS).
The last line printed is one JSON object.
"""

from __future__ import annotations

import json
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from slurm_cluster import running_slurm

from kubeforge.scheduler.client import SchedulerClient
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.resources import Resources
from kubeforge.scheduler.store.sqlite import SqliteStore

SUBMITTERS = 2
SUBMIT_JOBS = 3000
SBATCH_JOBS = 300
E2E_JOBS = 2000
SLOTS = 32
REPEATS = 3
ADMIN = "bench-admin-token-0123456789"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(root: Path, dispatch: bool) -> tuple[subprocess.Popen[bytes], str, SqliteStore]:
    db = root / "kf.db"
    store = SqliteStore(db)
    store.add_token(ADMIN, "bench", admin=True)
    store.put_queue(QueueSpec("bench", Resources(2000, 1 << 20)))
    port = _port()
    command = [sys.executable, "-m", "kubeforge.scheduler.serve", "--store", str(db), "--port", str(port)]
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


def _submit_many(url: str, count: int, spec: dict[str, object]) -> float:
    """Seconds for `count` submissions over SUBMITTERS parallel keep-alive connections."""
    per = count // SUBMITTERS

    def worker(_: int) -> None:
        with SchedulerClient(url, ADMIN) as client:
            for _ in range(per):
                client.submit(spec)

    start = time.perf_counter()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(worker, range(SUBMITTERS)))
    return time.perf_counter() - start


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


def measure_submit(env: dict[str, str]) -> dict[str, float]:
    kubeforge_rates, slurm_rates = [], []
    for _ in range(REPEATS):
        root = Path(tempfile.mkdtemp(prefix="kf-bench-"))
        process, url, store = _server(root, dispatch=False)
        try:
            seconds = _submit_many(url, SUBMIT_JOBS, {"queue": "bench", "command": ["true"]})
            assert len(store.list_jobs(limit=SUBMIT_JOBS + 1)) == SUBMIT_JOBS
            kubeforge_rates.append(SUBMIT_JOBS / seconds)
        finally:
            _stop(process)
            store.close()
            shutil.rmtree(root, ignore_errors=True)
        slurm_rates.append(SBATCH_JOBS / _sbatch_many(SBATCH_JOBS, env, ["--hold"]))
        subprocess.run(["scancel", "--user=root"], env=env, check=False)
        while _squeue_count(env):
            time.sleep(0.2)
    return {
        "kubeforge_submit_per_s": statistics.median(kubeforge_rates),
        "sbatch_per_s": statistics.median(slurm_rates),
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
    code = "import benchmarks_scheduler_cycle as c; c.main()"
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
    with running_slurm(oversubscribe=16) as cluster:
        env = {**os.environ, **cluster.env}
        submit = measure_submit(env)
        print(f"submit: {submit}", flush=True)
        end_to_end = measure_end_to_end(env)
        print(f"end to end: {end_to_end}", flush=True)
    figures = {**submit, **end_to_end, **cycle, "submitters": SUBMITTERS, "slots": SLOTS}
    ratios = {
        "submit_vs_slurm": submit["kubeforge_submit_per_s"] / submit["sbatch_per_s"],
        "end_to_end_vs_slurm": end_to_end["slurm_end_to_end_s"] / end_to_end["kubeforge_end_to_end_s"],
    }
    print(json.dumps({"benchmark": "scheduler", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
