"""The serving bench's C load generator: h2load (nghttp2) sending one pre-built request over and over.

Python clients cost more CPU per request than the servers they load (a grpc.aio client pinned to
one core answered about 115 requests/s at 8 ms for both gRPC servers, which h2load shows answer
over 1,000), so the gRPC rows and the binary-against-JSON rows use h2load: one thread, on the
bench's own core (it inherits the bench's CPU affinity), the same way for every server.

gRPC is sent as h2load sends any POST: over h2c with prior knowledge, the body one length-prefixed
ModelInferRequest, with `content-type: application/grpc` and `te: trailers`. A gRPC error comes
as HTTP 200 with a non-zero `grpc-status` in a trailers-only answer, which h2load counts as a
success; but it carries no DATA, so every run checks that the DATA bytes received equal the
answers counted times the length of the server's own good answer to that request (taken with
the real gRPC client before the run). Per-request latencies come from h2load's log file.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from kubeforge.serving.oip import grpc_predict_v2_pb2 as pb

H2LOAD = shutil.which("h2load")
MISSING = "h2load is not installed (Debian's nghttp2-client; `make bench-serving` installs it)"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
WARM_S = 0.3  # the first requests of a run are sent but not counted
GRPC_CONNECTIONS = 4  # gRPC streams are spread over at most this many HTTP/2 connections


@dataclass(frozen=True)
class H2LoadTarget:
    """One request h2load sends over and over, and how to tell a good answer."""

    url: str
    body: Path
    headers: tuple[str, ...]
    http1: bool
    answer_data_bytes: int = 0  # gRPC: DATA bytes of one good answer (errors come without any)


def grpc_frame(message: bytes) -> bytes:
    """`message` as one gRPC length-prefixed message (uncompressed)."""
    return b"\0" + struct.pack(">I", len(message)) + message


def grpc_target(port: int, message: bytes, body: Path) -> H2LoadTarget:
    """A ModelInfer target; asks the server once with the real gRPC client to learn its good answer's length."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer: bytes = channel.unary_unary(MODEL_INFER)(message, timeout=30)
    outputs = [output.name for output in pb.ModelInferResponse.FromString(answer).outputs]
    if "predictions" not in outputs:
        raise RuntimeError(f"gRPC server on port {port} answered outputs {outputs}, not predictions")
    body.write_bytes(grpc_frame(message))
    headers = ("content-type: application/grpc", "te: trailers")
    return H2LoadTarget(f"http://127.0.0.1:{port}{MODEL_INFER}", body, headers, False, len(grpc_frame(answer)))


def rest_target(port: int, path: str, body: bytes, file: Path, headers: tuple[str, ...]) -> H2LoadTarget:
    """An HTTP/1.1 POST target (h2load opens one keep-alive connection per client)."""
    file.write_bytes(body)
    return H2LoadTarget(f"http://127.0.0.1:{port}{path}", file, headers, True)


def closed_loop(target: H2LoadTarget, concurrency: int, seconds: float, log: Path) -> tuple[float, float, float, int]:
    """Requests per second, p50 and p99 latency, errors with `concurrency` requests always in flight."""
    if H2LOAD is None:
        raise RuntimeError(MISSING)
    if target.http1:
        connections, streams = concurrency, 1
    else:
        connections = min(concurrency, GRPC_CONNECTIONS)
        streams = concurrency // connections
    command = [
        H2LOAD,
        "-t",
        "1",
        "-c",
        str(connections),
        "-m",
        str(streams),
        "-D",
        f"{round((WARM_S + seconds) * 1000)}ms",
    ]
    command += ["-d", str(target.body), "--log-file", str(log)]
    for header in target.headers:
        command += ["-H", header]
    command += [*(["--h1"] if target.http1 else []), target.url]
    log.unlink(missing_ok=True)  # h2load appends to its log file
    summary = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    counts = re.search(r"(\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", summary)
    data = re.search(r"traffic: .*\((\d+)\) data", summary)
    if counts is None or data is None:
        raise RuntimeError(f"h2load printed no summary: {summary[-500:]}")
    done, failed, errored, timeouts = (int(value) for value in counts.groups())
    errors = failed + errored + timeouts
    if target.answer_data_bytes:  # answers without a full message body are gRPC errors
        errors += max(0, done - int(data.group(1)) // target.answer_data_bytes)
    entries = np.loadtxt(log, dtype=np.int64, ndmin=2)  # start (µs since the epoch), status, duration (µs)
    if not len(entries):
        return 0.0, float("inf"), float("inf"), errors + 1
    start = entries[:, 0].min() + WARM_S * 1e6
    counted = entries[(entries[:, 0] >= start) & (entries[:, 0] < start + seconds * 1e6)]
    errors += int((counted[:, 1] != 200).sum())
    latencies = counted[:, 2] / 1e6
    if not len(latencies):
        return 0.0, float("inf"), float("inf"), errors + 1
    return (
        len(latencies) / seconds,
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 99)),
        errors,
    )


__all__ = ["H2LOAD", "MISSING", "H2LoadTarget", "closed_loop", "grpc_frame", "grpc_target", "rest_target"]
