"""The API's request and response as plain values, its error type, and the parsing of bodies and queries."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from kubeforge.errors import InputError
from kubeforge.scheduler.model import Job

Receive = Callable[[], Awaitable[dict[str, Any]]]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
MAX_BODY_BYTES = 1 << 20
RETRY_AFTER_S = 2
"""What a 503 (store unavailable) or 429 (over a cap) asks the client to wait before retrying."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the API needs it: the Authorization header is the only header read;
    `client` names the connection ("host:port", "" when unknown)."""

    method: str
    path: str
    query: bytes
    authorization: bytes
    body: bytes
    client: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """One answer: status, body, its content type and any extra headers."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


class HTTPError(Exception):
    """Ends a request with `status` and a JSON `{"error": message}`; 429 and 503 carry Retry-After."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> Response:
        """The answer this error gives."""
        return error_response(self.status, str(self))


def error_response(status: int, message: str) -> Response:
    """A JSON error; a 429 or 503 asks the client to come back after RETRY_AFTER_S."""
    retry = ((b"retry-after", str(RETRY_AFTER_S).encode()),) if status in (429, 503) else ()
    return Response(status, json.dumps({"error": message}).encode(), JSON, retry)


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InputError."""
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("request body: not valid JSON") from None
    if not isinstance(value, dict):
        raise InputError("request body: expected a JSON object")
    return value


def query_int(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    """A whole-number query parameter within [low, high], `default` when absent; InputError naming it otherwise."""
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.lstrip("-").isdigit() or len(text) > 19 or not low <= int(text) <= high:
        raise InputError(f"?{name}: expected a whole number from {low} to {high}, got {text[:40]!r}")
    return int(text)


def parse_query(query: bytes) -> dict[str, str]:
    """The query string's parameters (the last of repeated ones)."""
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))


def allow(method: str, *allowed: str) -> None:
    """HTTPError 405 unless `method` is one of `allowed`."""
    if method not in allowed:
        raise HTTPError(405, f"method {method} not allowed here; use {' or '.join(allowed)}")


def require_admin(admin: bool) -> None:
    """HTTPError 403 unless the token is an admin token."""
    if not admin:
        raise HTTPError(403, "this needs an admin token")


def job_view(job: Job, with_spec: bool = True) -> dict[str, Any]:
    """A job as the API shows it (an array's tasks leave out the spec they share)."""
    view: dict[str, Any] = {
        "id": job.id,
        "state": job.state.value,
        "reason": job.reason,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "admitted_at": job.admitted_at,
        "finished_at": job.finished_at,
        "exit_code": job.exit_code,
        "cancel_requested": job.cancel_requested,
        "array_id": job.array_id,
        "array_index": job.array_index,
    }
    if with_spec:
        view["spec"] = job.spec.to_dict()
    return view


async def read_body(receive: Receive) -> bytes:
    """An ASGI request's body, or HTTPError 413 past MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPError(413, f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


__all__ = [
    "JSON",
    "MAX_BODY_BYTES",
    "RETRY_AFTER_S",
    "TEXT",
    "HTTPError",
    "Receive",
    "Request",
    "Response",
    "allow",
    "error_response",
    "job_view",
    "parse_json",
    "parse_query",
    "query_int",
    "read_body",
    "require_admin",
]
