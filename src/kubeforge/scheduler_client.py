"""A small Python client for the scheduler's REST API: standard library only, one kept-alive connection
per thread, and a lean HTTP/1.1 exchange (the request in one write, the response read with its length).
It speaks HTTPS to a server started with a certificate (`https://` URLs; `ca_file` or
$KUBEFORGE_SCHEDULER_CA for a private certificate authority)."""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from kubeforge import settings
from kubeforge.errors import InputError, SchedulerError

CA_ENV = settings.SCHEDULER_CA.name


class SchedulerClient:
    """Talks to `kubeforge queue serve` at `url` with a bearer token; one connection per thread."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0, ca_file: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"url {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.token = token
        self.timeout_s = timeout_s
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context(cafile=ca_file or settings.SCHEDULER_CA.read() or None)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SchedulerClient({self.host!r}, {self.port})"

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
        """The array's tasks by index (every page); the array's spec is `array_spec`."""
        tasks: list[dict[str, Any]] = []
        after = -1
        while after is not None:
            page = self._request("GET", f"/v1/arrays/{array_id}?after={after}")
            tasks += page["tasks"]
            after = page["next_after"]
        return tasks

    def array_spec(self, array_id: int) -> dict[str, Any]:
        """The job spec every task of the array runs."""
        return dict(self._request("GET", f"/v1/arrays/{array_id}?limit=1")["spec"])

    def cancel_array(self, array_id: int) -> list[int]:
        """Ask for every unfinished task of the array to be cancelled; returns their ids."""
        return [int(job_id) for job_id in self._request("DELETE", f"/v1/arrays/{array_id}")["cancel_requested"]]

    def jobs(self, active_only: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """The team's jobs, newest first: all of them, or the newest `limit` (fetched page by page)."""
        return list(self._pages(active_only, limit))

    def _pages(self, active_only: bool, limit: int | None) -> Iterator[dict[str, Any]]:
        left, before = limit, None
        while left is None or left > 0:
            query = {"limit": min(left or 1000, 1000), "active": int(active_only)} | (
                {"before": before} if before else {}
            )
            page = self._request("GET", f"/v1/jobs?{urlencode(query)}")
            yield from page["jobs"][:left]
            left = None if left is None else left - len(page["jobs"])
            before = page["next_before"]
            if before is None:
                return

    def job(self, job_id: int) -> dict[str, Any]:
        """One job, with position and estimated start while pending."""
        return dict(self._request("GET", f"/v1/jobs/{job_id}"))

    def cancel(self, job_id: int) -> None:
        """Ask for a job to be cancelled."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def logs(self, job_id: int, offset: int | None = None, limit: int | None = None) -> str:
        """The tail of the job's output (the server's default size, or `limit` bytes); with `offset`, the
        output from there."""
        query = {key: value for key, value in (("offset", offset), ("limit", limit)) if value is not None}
        return self.log_range(job_id, **query)[1].decode(errors="replace")

    def log_range(self, job_id: int, offset: int | None = None, limit: int | None = None) -> tuple[int, bytes, int]:
        """(start, data, size): at most `limit` bytes of the output from `offset` (None: the tail), where
        they start, and the output's whole size when read."""
        query = urlencode({key: value for key, value in (("offset", offset), ("limit", limit)) if value is not None})
        headers, data = self._request("GET", f"/v1/jobs/{job_id}/logs?{query}", raw=True)
        return int(headers.get(b"x-log-offset", b"0")), data, int(headers.get(b"x-log-size", b"0"))

    def log_chunks(self, job_id: int, offset: int = 0) -> Iterator[bytes]:
        """The whole output from `offset`, one bounded chunk at a time (for streaming it to a file)."""
        while True:
            start, data, size = self.log_range(job_id, offset)
            if data:
                yield data
            offset = start + len(data)
            if not data or offset >= size:
                return

    def queues(self) -> list[dict[str, Any]]:
        """Every queue."""
        return list(self._request("GET", "/v1/queues")["queues"])

    def put_queue(
        self, name: str, nominal: dict[str, Any], cohort: str = "", borrowing_limit: dict[str, Any] | None = None
    ) -> None:
        """Create or change a queue (admin token)."""
        body = {"nominal": nominal, "cohort": cohort, "borrowing_limit": borrowing_limit or {}}
        self._request("PUT", f"/v1/queues/{name}", body)

    def create_token(self, team: str, admin: bool = False, expires_in_s: float | None = None) -> str:
        """A new token bound to `team`, valid for `expires_in_s` seconds or until revoked (admin token)."""
        body = {"team": team, "admin": admin, "expires_in_s": expires_in_s}
        return str(self._request("POST", "/v1/tokens", body)["token"])

    def tokens(self, team: str = "") -> list[dict[str, Any]]:
        """Every token's id, team, admin flag, creation and expiry (never the token), or one team's (admin)."""
        return list(self._request("GET", "/v1/tokens" + (f"?team={team}" if team else ""))["tokens"])

    def revoke_token(self, token_id: str) -> None:
        """Revoke the token with this id (as `tokens` lists it); it stops working at once (admin)."""
        self._request("DELETE", f"/v1/tokens/{token_id}")

    def health(self) -> dict[str, Any]:
        """/healthz: the dispatcher's liveness and last successful step."""
        return dict(self._request("GET", "/healthz"))

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, raw: bool = False) -> Any:
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
                status, headers, payload, keep = _read_response(connection.reader)
                break
            except (OSError, _ResponseError) as exc:
                self.close()
                # a kept-alive connection the server closed meanwhile is retried; a submission never is
                if attempt == 2 or method == "POST" or not reused:
                    raise SchedulerError(f"scheduler at {self.host}:{self.port} unreachable: {exc}") from None
        if not keep:
            self.close()
        is_json = headers.get(b"content-type", b"").startswith(b"application/json")
        if status >= 400:
            value = json.loads(payload) if is_json else payload.decode(errors="replace")
            message = value.get("error", value) if isinstance(value, dict) else value
            raise SchedulerError(f"{method} {path}: {status}: {message}")
        if raw:
            return headers, payload
        return json.loads(payload) if is_json else payload.decode(errors="replace")

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None and select.select([connection.sock], [], [], 0)[0]:
            # between answers the server sends nothing: readable means it closed the idle connection
            self.close()
            connection = None
        if connection is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
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


def _read_response(reader: BinaryIO) -> tuple[int, dict[bytes, bytes], bytes, bool]:
    """(status, headers, body, keep-alive) of one response with a Content-Length or read to the close."""
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
    return int(parts[1]), headers, body, keep


__all__ = ["CA_ENV", "SchedulerClient", "SchedulerError"]
