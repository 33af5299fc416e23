"""Model server throughput and latency: kubeforge against KServe's ModelServer and a FastAPI baseline.

The same TorchScript model (an MLP trained on scikit-learn's breast cancer data, with its fitted
preprocessor) is served by (1) kubeforge, (2) KServe's Python ModelServer (own virtualenv) and
(3) a minimal FastAPI + uvicorn endpoint calling the model once per request; (4) kubeforge with a
no-op network gives the ceiling of its HTTP stack. Every server is pinned to CPU 0, this load
generator to CPU 1. All speak the same v2 infer request; the mix is 90% one-row and 10% eight-row
requests. Closed-loop load at rising concurrency finds each server's highest throughput whose
p99 latency is at most 50 ms (median of REPEATS runs per level); an open-loop run at a fixed rate
gives p50/p99 for each. Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer

from kubeforge.model_format import script_module, write_model_dir
from kubeforge.preprocessor import PreprocessOptions, fit_preprocessor
from kubeforge.tabular import infer_schema
from kubeforge.training.models import TabularMLP

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench" / "serving"
PEERS = Path(__file__).resolve().parent / "serving_peers"
KSERVE_PYTHON = ROOT / ".bench" / "kserve-venv" / "bin" / "python"
FASTAPI_PYTHON = ROOT / ".bench" / "fastapi-venv" / "bin" / "python"
NAME = "cancer"
P99_BOUND_S = 0.050
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128)
LEVEL_SECONDS = float(os.environ.get("BENCH_LEVEL_SECONDS", "2.0"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
FIXED_RATE = float(os.environ.get("BENCH_FIXED_RATE", "200"))
FIXED_SECONDS = 4.0
SERVER_CPU, LOAD_CPU = "0", 1


class _Zeros(torch.nn.Module):
    """The no-op network: answers zeros at once."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.zeros(features.shape[0], self.classes)


def build_models() -> tuple[Path, Path, pd.DataFrame]:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    radius = frame["mean radius"]
    frame["size_band"] = np.where(
        radius <= radius.quantile(1 / 3), "low", np.where(radius <= radius.quantile(2 / 3), "mid", "high")
    )
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    preprocessor = fit_preprocessor(frame, infer_schema(frame, "target"), "classification", PreprocessOptions())
    torch.manual_seed(0)
    features = torch.tensor(preprocessor.transform(frame))
    targets = torch.tensor(preprocessor.encode_labels(frame["target"]))
    model = TabularMLP(features.shape[1], 2, hidden=(64, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(features), targets).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    real = write_model_dir(WORK / "model", script_module(model), preprocessor, [], training={})
    noop = write_model_dir(WORK / "noop", script_module(_Zeros(2)), preprocessor, [], training={})
    return real, noop, frame.drop(columns=["target"])


def request_bodies(rows: pd.DataFrame) -> list[bytes]:
    bodies = []
    for index in range(100):
        part = rows.iloc[index * 3 : index * 3 + (8 if index % 10 == 9 else 1)]
        inputs = [
            {
                "name": column,
                "shape": [len(part)],
                "datatype": "BYTES" if column == "size_band" else "FP64",
                "data": part[column].tolist(),
            }
            for column in part.columns
        ]
        bodies.append(json.dumps({"id": str(index), "inputs": inputs}).encode())
    return bodies


@dataclass
class Server:
    label: str
    command: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
        log = (WORK / f"{self.label}.log").open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.command], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {WORK / (self.label + '.log')}")
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} not ready after 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def _connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def closed_loop(port: int, bodies: list[bytes], concurrency: int, seconds: float) -> tuple[float, float, int]:
    """Requests per second, p99 latency and errors with `concurrency` connections each sending back to back."""
    raws = [_request(port, body) for body in bodies]
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    warm_until, stop_at = start + 0.3, start + 0.3 + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await _connection(port)
        index = offset
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            status = await _exchange(reader, writer, raws[index % len(raws)])
            done = time.perf_counter()
            index += 7
            if sent >= warm_until:
                latencies.append(done - sent)
                errors += status != 200
        writer.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    if not latencies:
        return 0.0, float("inf"), errors
    return len(latencies) / seconds, float(np.percentile(latencies, 99)), errors


async def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 latency at a fixed arrival rate, measured from each request's scheduled time."""
    raws = [_request(port, body) for body in bodies]
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []

    async def worker() -> None:
        reader, writer = await _connection(port)
        while (item := await queue.get()) is not None:
            scheduled, raw = item
            await _exchange(reader, writer, raw)
            latencies.append(time.perf_counter() - scheduled)
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(64)]
    start = time.perf_counter()
    for index in range(int(rate * seconds)):
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        queue.put_nowait((scheduled, raws[index % len(raws)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def measure(server: Server, bodies: list[bytes]) -> dict[str, Any]:
    levels: dict[int, dict[str, float]] = {}
    best = 0.0
    misses = 0
    for concurrency in CONCURRENCY:
        runs = [asyncio.run(closed_loop(server.port, bodies, concurrency, LEVEL_SECONDS)) for _ in range(REPEATS)]
        throughput = statistics.median(run[0] for run in runs)
        p99 = statistics.median(run[1] for run in runs)
        errors = sum(run[2] for run in runs)
        levels[concurrency] = {"rps": round(throughput, 1), "p99_ms": round(p99 * 1000, 2), "errors": errors}
        print(
            f"  {server.label:>16} c={concurrency:<4} {throughput:8.1f} req/s  p99 {p99 * 1000:7.2f} ms  err {errors}",
            flush=True,
        )
        if p99 <= P99_BOUND_S and errors == 0:
            best = max(best, throughput)
            misses = 0
        else:
            misses += 1
            if misses == 2:
                break
    p50, p99 = asyncio.run(open_loop(server.port, bodies, FIXED_RATE, FIXED_SECONDS))
    print(f"  {server.label:>16} at {FIXED_RATE:g} req/s: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms", flush=True)
    return {
        "best_rps": round(best, 1),
        "levels": levels,
        "fixed_rate_p50_ms": round(p50 * 1000, 2),
        "fixed_rate_p99_ms": round(p99 * 1000, 2),
    }


def main() -> int:
    for python in (KSERVE_PYTHON, FASTAPI_PYTHON):
        if not python.exists():
            print(
                f"{python} is missing; run `make bench-serving`, which creates the peers' virtualenvs", file=sys.stderr
            )
            return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs: one for the servers, one for the load generator", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOAD_CPU})
    WORK.mkdir(parents=True, exist_ok=True)
    real, noop, rows = build_models()
    bodies = request_bodies(rows)
    kubeforge_server = [sys.executable, "-m", "kubeforge.serving.server", "--workers", "1"]
    servers = [
        Server("kubeforge", [*kubeforge_server, "--model", f"{NAME}={real}", "--port", "18301"], 18301),
        Server("kubeforge-noop", [*kubeforge_server, "--model", f"{NAME}={noop}", "--port", "18302"], 18302),
        Server("kserve", [str(KSERVE_PYTHON), str(PEERS / "kserve_server.py"), str(real), NAME, "18303"], 18303),
        Server("fastapi", [str(FASTAPI_PYTHON), str(PEERS / "fastapi_server.py"), str(real), NAME, "18304"], 18304),
    ]
    results: dict[str, dict[str, Any]] = {}
    for server in servers:
        server.start()
        try:
            results[server.label] = measure(server, bodies)
        finally:
            server.stop()

    def ratio(a: str, b: str) -> float:
        return round(results[a]["best_rps"] / results[b]["best_rps"], 2) if results[b]["best_rps"] else float("inf")

    figures: dict[str, Any] = {"fixed_rate_rps": FIXED_RATE, "p99_bound_ms": P99_BOUND_S * 1000}
    for label, result in results.items():
        key = label.replace("-", "_")
        figures[f"{key}_best_rps"] = result["best_rps"]
        figures[f"{key}_p50_ms"] = result["fixed_rate_p50_ms"]
        figures[f"{key}_p99_ms"] = result["fixed_rate_p99_ms"]
    summary = {
        "benchmark": "serving",
        "ratios": {
            "vs_kserve": ratio("kubeforge", "kserve"),
            "vs_fastapi": ratio("kubeforge", "fastapi"),
            "vs_noop_ceiling": ratio("kubeforge", "kubeforge-noop"),
        },
        "figures": figures,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
