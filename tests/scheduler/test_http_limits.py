"""The HTTP server under abuse, over raw sockets: oversized heads, half-sent requests, idle and surplus
connections, clients that never read, floods of made-up tokens; and the same API over HTTPS."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.auth import MAX_CACHED_TOKENS
from kubeforge.scheduler.http_server import ServerLimits, serving_in_thread, tls_context
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore
from kubeforge.scheduler_client import SchedulerClient, SchedulerError

TOKEN = "limits-http-token-0123456789"
QUICK = ServerLimits(header_timeout_s=0.5, body_timeout_s=0.5, idle_timeout_s=0.5, max_connections=8)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    found = SqliteStore(tmp_path / "kf.db")
    found.add_token(TOKEN, "admin", admin=True)
    found.put_queue(QueueSpec("q", Resources(1000, 1024)))
    yield found
    found.close()


@pytest.fixture
def served(store: SqliteStore) -> Iterator[tuple[str, SchedulerAPI]]:
    api = SchedulerAPI(store)
    with serving_in_thread(api, limits=QUICK) as url:
        yield url, api


def _connect(url: str) -> socket.socket:
    host, port = url.split("//")[1].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status of the one response on the socket and whatever came after it until the server closed."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_a_head_over_16_kib_is_answered_431_and_the_server_serves_on(served: tuple[str, SchedulerAPI]) -> None:
    url, _ = served
    with _connect(url) as sock:
        sock.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * (64 << 20 >> 4) + b"\r\n\r\n")
        status, data = _answer(sock)
    assert status == 431 and b"over 16384 bytes" in data
    with SchedulerClient(url, TOKEN) as client:  # the same head under the cap is fine
        assert client.jobs() == []


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode(),  # headers never end
        b'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"queue"',  # body never ends
    ],
)
def test_a_half_sent_request_is_timed_out_with_408(served: tuple[str, SchedulerAPI], partial: bytes) -> None:
    url, _ = served
    with _connect(url) as sock:
        sock.sendall(partial)
        status, data = _answer(sock)  # the server closes; nothing is left waiting
    assert status == 408 and b"not received in time" in data


def test_idle_and_silent_connections_are_closed(served: tuple[str, SchedulerAPI]) -> None:
    url, _ = served
    with _connect(url) as silent, _connect(url) as idle:
        idle.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        first = idle.recv(4)
        assert silent.recv(1) == b""  # never sent a byte: closed after the header timeout
        while idle.recv(65536):  # answered, then closed once idle
            pass
    assert first == b"HTTP"


def test_connections_past_the_cap_are_refused_with_503(served: tuple[str, SchedulerAPI]) -> None:
    url, _ = served
    held = [_connect(url) for _ in range(QUICK.max_connections)]
    try:
        for sock in held:  # each is accepted and answers
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
        with _connect(url) as surplus:
            status, data = _answer(surplus)
        assert status == 503 and b"too many connections" in data
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_never_reads_stops_being_read_from(served: tuple[str, SchedulerAPI]) -> None:
    url, _ = served
    request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 8000 + b"\r\n\r\n"
    with _connect(url) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(2)
        sent = 0
        with pytest.raises(TimeoutError):  # the server stops reading once its answers pile up unread
            for _ in range(20_000):  # 160 MB of requests, ~400 MB of answers without backpressure
                sock.sendall(request)
                sent += len(request)
    assert sent < 64 << 20


def test_only_valid_tokens_are_cached_and_the_cache_is_bounded(served: tuple[str, SchedulerAPI]) -> None:
    url, api = served
    with _connect(url) as sock:
        for index in range(300):
            sock.sendall(
                f"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer made-up-{index:030d}\r\n\r\n".encode()
            )
        sock.sendall(f"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        reader = sock.makefile("rb")
        statuses = []
        for _ in range(301):
            statuses.append(int(reader.readline().split()[1]))
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length"):
                    length = int(line.split(b":")[1])
            reader.read(length)
    assert statuses == [401] * 300 + [200]
    assert len(api.token_cache) == 1
    for index in range(MAX_CACHED_TOKENS + 10):
        api.token_cache.put(f"token-{index}", ("team", False))
    assert len(api.token_cache) == MAX_CACHED_TOKENS


def test_https_with_a_certificate_and_the_client_verifies_it(store: SqliteStore, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    with serving_in_thread(SchedulerAPI(store), tls=tls_context(str(cert), str(key))) as url:
        assert url.startswith("https://")
        with SchedulerClient(url, TOKEN, ca_file=str(cert)) as client:
            job = client.submit({"queue": "q", "command": ["true"]})
            assert client.job(job)["state"] == "pending"
        with SchedulerClient(url, TOKEN) as untrusting, pytest.raises(SchedulerError, match="CERTIFICATE_VERIFY"):
            untrusting.jobs()
        with _connect(url) as plain:  # plain HTTP to the TLS port gets nothing served
            plain.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"openapi" not in plain.recv(65536)


def test_store_errors_and_429_carry_retry_after(store: SqliteStore) -> None:
    store.put_queue(QueueSpec("tiny", Resources(1000, 1024), max_pending_per_team=1))
    with serving_in_thread(SchedulerAPI(store)) as url, _connect(url) as sock:
        body = json.dumps({"queue": "tiny", "command": ["true"]}).encode()
        head = f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body + head.encode() + b"Connection: close\r\n\r\n" + body)
        _, data = _answer(sock)
    second = data[data.index(b"HTTP/1.1", 10) :]
    assert second.startswith(b"HTTP/1.1 429") and b"retry-after: 2\r\n" in second.lower()


def test_the_client_reconnects_when_the_server_closed_its_idle_connection(served: tuple[str, SchedulerAPI]) -> None:
    url, _ = served
    with SchedulerClient(url, TOKEN) as client:
        first = client.submit({"queue": "q", "command": ["true"]})
        time.sleep(QUICK.idle_timeout_s * 3)  # the server closes the kept-alive connection meanwhile
        assert client.submit({"queue": "q", "command": ["true"]}) == first + 1  # a submission is never retried
