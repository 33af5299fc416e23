"""The small piece of ASGI the model server needs: typed scope/messages, body reading, replies."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = b"application/json"
BINARY_TYPE = b"application/octet-stream"
_DECOMPRESS_WBITS = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


class HTTPError(Exception):
    """An answer other than 200 with a message for the client (`{"error": message}`)."""

    def __init__(self, status: int, message: str, headers: Headers | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class Disconnected(Exception):
    """The client went away before its request body arrived."""


@dataclass
class Reply:
    """Status, body and content type of an answer, plus extra headers."""

    status: int
    body: bytes
    content_type: bytes = JSON_TYPE
    headers: Headers = field(default_factory=list)


def json_bytes(payload: Any) -> bytes:
    """Compact JSON (no spaces), the encoding of every JSON answer."""
    return json.dumps(payload, separators=(",", ":")).encode()


def json_reply(payload: Any, status: int = 200) -> Reply:
    """A JSON answer."""
    return Reply(status, json_bytes(payload))


def error_reply(status: int, message: str, headers: Headers | None = None) -> Reply:
    """`{"error": message}` with `status`."""
    return Reply(status, json_bytes({"error": message}), headers=headers or [])


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as Content-Length or the bytes received pass `limit`."""
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPError(400, f"Content-Length header: {declared!r} is not a number") from None
        if size > limit:
            raise HTTPError(413, _too_large(f"Content-Length is {size} bytes", limit))
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise HTTPError(413, _too_large(f"the body reached {received} bytes", limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_body(scope: Scope, body: bytes, limit: int) -> bytes:
    """`body` inflated per its Content-Encoding (gzip, deflate), at most `limit` bytes once inflated (else 413)."""
    encoding = (header(scope, b"content-encoding") or b"identity").strip().lower()
    if encoding == b"identity":
        return body
    wbits = _DECOMPRESS_WBITS.get(encoding)
    if wbits is None:
        raise HTTPError(415, f"Content-Encoding {encoding.decode(errors='replace')!r}: send gzip, deflate or identity")
    inflater = zlib.decompressobj(wbits)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HTTPError(400, f"request body: not valid {encoding.decode()} data ({exc})") from None
    if len(inflated) > limit:
        raise HTTPError(413, _too_large("the inflated body passes the limit", limit))
    if not inflater.eof:
        raise HTTPError(400, f"request body: the {encoding.decode()} stream is cut short")
    return inflated


def _too_large(what: str, limit: int) -> str:
    return f"request body too large: {what}, the limit is {limit} bytes; split the batch into smaller requests"


async def send_reply(send: Send, reply: Reply) -> None:
    """Send `reply` as one response start and one body message."""
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [
                (b"content-type", reply.content_type),
                (b"content-length", str(len(reply.body)).encode()),
                *reply.headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply.body})


def require_method(method: str, allowed: str, path: str) -> None:
    """405 with an Allow header unless `method` is `allowed`."""
    if method != allowed:
        raise HTTPError(405, f"{method} is not allowed on {path}; use {allowed}", [(b"allow", allowed.encode())])


__all__ = [
    "BINARY_TYPE",
    "JSON_TYPE",
    "Disconnected",
    "HTTPError",
    "Headers",
    "Message",
    "Receive",
    "Reply",
    "Scope",
    "Send",
    "decode_body",
    "error_reply",
    "header",
    "json_bytes",
    "json_reply",
    "read_body",
    "require_method",
    "send_reply",
]
