"""A small Python client for the scheduler's REST API: standard library only, one kept-alive connection
per thread, and a lean HTTP/1.1 exchange (the request in one write, the response read with its length)."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from kubeforge.errors import InputError, SchedulerError


class SchedulerClient:
    """Talks to `kubeforge queue serve` at `url` with a bearer token; one connection per thread."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise InputError(f"url {url!r}: expected http://HOST:PORT")
        self.host, self.port = parts.hostname, parts.port or 80
        self.token = token
        self.timeout_s = timeout_s
        self._local = threading.local()

    def __enter__(self) -> SchedulerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's connection."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def submit(self, spec: dict[str, Any]) -> int:
        """Submit a job spec (see JobSpec); returns the job id once it is durably recorded."""
        return int(self._request("POST", "/v1/jobs", spec)["id"])

    def submit_array(self, spec: dict[str, Any], indices: str | list[int]) -> list[int]:
        """Submit one job per task index ("0-99", "0-99:10", "1,3,8-9" or a list), each run with
        KUBEFORGE_ARRAY_TASK_ID set; returns the task ids once all are recorded (the first is the array's id)."""
        return [int(job_id) for job_id in self._request("POST", "/v1/arrays", {"array": indices, "job": spec})["ids"]]

    def array(self, array_id: int) -> list[dict[str, Any]]:
        """The array's tasks by index."""
        return list(self._request("GET", f"/v1/arrays/{array_id}")["tasks"])

    def cancel_array(self, array_id: int) -> list[int]:
        """Ask for every unfinished task of the array to be cancelled; returns their ids."""
        return [int(job_id) for job_id in self._request("DELETE", f"/v1/arrays/{array_id}")["cancel_requested"]]

    def jobs(self, active_only: bool = False) -> list[dict[str, Any]]:
        """The team's jobs, newest first."""
        return list(self._request("GET", "/v1/jobs?active=1" if active_only else "/v1/jobs")["jobs"])

    def job(self, job_id: int) -> dict[str, Any]:
        """One job, with position and estimated start while pending."""
        return dict(self._request("GET", f"/v1/jobs/{job_id}"))

    def cancel(self, job_id: int) -> None:
        """Ask for a job to be cancelled."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def logs(self, job_id: int) -> str:
        """The job's output so far."""
        return str(self._request("GET", f"/v1/jobs/{job_id}/logs"))

    def queues(self) -> list[dict[str, Any]]:
        """Every queue."""
        return list(self._request("GET", "/v1/queues")["queues"])

    def put_queue(
        self, name: str, nominal: dict[str, Any], cohort: str = "", borrowing_limit: dict[str, Any] | None = None
    ) -> None:
        """Create or change a queue (admin token)."""
        body = {"nominal": nominal, "cohort": cohort, "borrowing_limit": borrowing_limit or {}}
        self._request("PUT", f"/v1/queues/{name}", body)

    def create_token(self, team: str, admin: bool = False) -> str:
        """A new token bound to `team` (admin token)."""
        return str(self._request("POST", "/v1/tokens", {"team": team, "admin": admin})["token"])

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        for attempt in (1, 2):
            reused = getattr(self._local, "connection", None) is not None
            try:
                connection = self._connection()
                connection.sock.sendall(request)
                status, kind, payload, keep = _read_response(connection.reader)
                break
            except (OSError, _ResponseError) as exc:
                self.close()
                # a kept-alive connection the server closed meanwhile is retried; a submission never is
                if attempt == 2 or method == "POST" or not reused:
                    raise SchedulerError(f"scheduler at {self.host}:{self.port} unreachable: {exc}") from None
        if not keep:
            self.close()
        value: Any = json.loads(payload) if kind.startswith("application/json") else payload.decode()
        if status >= 400:
            message = value.get("error", payload.decode()) if isinstance(value, dict) else value
            raise SchedulerError(f"{method} {path}: {status}: {message}")
        return value

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock, sock.makefile("rb"))
            self._local.connection = connection
        return connection


class _ResponseError(Exception):
    """The server's answer was not a well-formed HTTP/1.1 response."""


@dataclass
class _Connection:
    sock: socket.socket
    reader: BinaryIO

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _read_response(reader: BinaryIO) -> tuple[int, str, bytes, bool]:
    """(status, content type, body, keep-alive) of one response with a Content-Length or read to the close."""
    status_line = reader.readline(65537)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _ResponseError(f"bad status line {status_line[:80]!r}" if status_line else "connection closed")
    headers: dict[bytes, bytes] = {}
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        raise _ResponseError("chunked responses are not expected from the scheduler")
    length = headers.get(b"content-length")
    keep = headers.get(b"connection", b"").lower() != b"close" and length is not None
    body = reader.read(int(length)) if length is not None else reader.read()
    if length is not None and len(body) != int(length):
        raise _ResponseError("connection closed in the middle of a response")
    return int(parts[1]), headers.get(b"content-type", b"").decode("latin-1"), body, keep


__all__ = ["SchedulerClient", "SchedulerError"]
