"""The scheduler's own HTTP server over raw sockets: keep-alive, pipelining, malformed and oversized requests;
and the same API mounted in a general ASGI server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn

from kubeforge.resources import Resources
from kubeforge.scheduler.api import MAX_BODY_BYTES, SchedulerAPI
from kubeforge.scheduler.http_server import serving_in_thread
from kubeforge.scheduler.model import QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore

TOKEN = "http-admin-token-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    found = SqliteStore(tmp_path / "kf.db")
    found.add_token(TOKEN, "admin", admin=True)
    found.put_queue(QueueSpec("q", Resources(1000, 1024)))
    yield found
    found.close()


def _request(method: str, path: str, body: bytes = b"", extra: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + extra + b"\r\n" + body


def _responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, object]]]:
    """Read `count` responses with Content-Length bodies off the socket."""
    reader = sock.makefile("rb")
    found = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        found.append((status, json.loads(reader.read(length))))
    return found


def test_pipelined_requests_are_answered_in_order_on_one_connection(store: SqliteStore) -> None:
    job = json.dumps({"queue": "q", "command": ["true"]}).encode()
    with serving_in_thread(SchedulerAPI(store)) as url, socket.create_connection(_address(url)) as sock:
        sock.sendall(
            _request("POST", "/v1/jobs", job) + _request("GET", "/v1/nope") + _request("POST", "/v1/jobs", job)
        )
        (first, created), (missing, error), (second, again) = _responses(sock, 3)
    assert (first, missing, second) == (201, 404, 201)
    assert int(str(created["id"])) + 1 == int(str(again["id"])) and "no route" in str(error["error"])
    assert len(store.list_jobs()) == 2


def test_expect_continue_is_answered_before_the_body(store: SqliteStore) -> None:
    job = json.dumps({"queue": "q", "command": ["true"]}).encode()
    with serving_in_thread(SchedulerAPI(store)) as url, socket.create_connection(_address(url)) as sock:
        sock.sendall(_request("POST", "/v1/jobs", job, extra=b"Expect: 100-continue\r\n")[: -len(job)])
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(job)
        assert _responses(sock, 1)[0][0] == 201


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"NOT A REQUEST\r\n\r\n", 400, "malformed HTTP request"),
        (_request("POST", "/v1/jobs", b"x" * (MAX_BODY_BYTES + 1)), 413, "request body over"),
    ],
)
def test_malformed_and_oversized_requests_get_an_error_and_a_closed_connection(
    store: SqliteStore, raw: bytes, status: int, message: str
) -> None:
    with serving_in_thread(SchedulerAPI(store)) as url, socket.create_connection(_address(url)) as sock:
        sock.sendall(raw)
        ((found, body),) = _responses(sock, 1)
        assert found == status and message in str(body["error"])
        assert sock.recv(1) == b""  # closed by the server
    assert store.list_jobs() == []


def test_the_api_is_a_plain_asgi_application_too(store: SqliteStore) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(SchedulerAPI(store), port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{port}"
        created = requests.post(f"{url}/v1/jobs", json={"queue": "q", "command": ["true"]}, headers=headers, timeout=10)
        refused = requests.post(
            f"{url}/v1/jobs", json={"queue": "none", "command": ["true"]}, headers=headers, timeout=10
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert created.status_code == 201 and store.get(created.json()["id"]) is not None
    assert refused.status_code == 400 and "queue: 'none' does not exist" in refused.json()["error"]


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)
