"""HTTP/2 frames, settings, errors and header blocks (RFC 9113, RFC 7541): the pieces of kubeforge's h2c transport.

Request header blocks are decoded with hpack (by the connection, which keeps the decoder); the
server's own header blocks are literals without indexing, so it keeps no encoder state and any
HEADER_TABLE_SIZE of the peer is honoured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x5, 0x6, 0x7, 0x9, 0xB
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
MAX_FRAME = 16384  # what the server accepts: the protocol's default, never raised
STREAM_WINDOW = 1 << 20  # advertised initial window of each stream
CONNECTION_WINDOW = 1 << 24  # the connection's receive window, once raised
MAX_STREAMS = 256
MAX_HEADER_LIST = 16384
SHUTDOWN_PING = b"draining"  # the PING payload of a graceful shutdown
HANDSHAKE_S = 10.0  # how long a new connection has to send the preface and its SETTINGS (no slow handshakes)
LINGER_S = 1.0  # how long a closing connection waits for the peer to close after our EOF
SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 0x2, 0x3, 0x4
SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x5, 0x6
SERVER_SETTINGS = (
    (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS),
    (SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
    (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
)
_PSEUDO = {b":method", b":scheme", b":path", b":authority"}
_CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
HPACK_ERRORS = (hpack.HPACKError, ValueError, IndexError)
INDEXED_FIELD_BYTES = bytes(range(0x80, 0xFF))  # a block of only these bytes is indexed fields 1 to 126
INDEXED_BLOCKS_KEPT = 64


class H2ConnectionError(Exception):
    """A connection error: GOAWAY with `code`, then close."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class StreamError(Exception):
    """A stream error: RST_STREAM with `code`; the connection goes on."""

    def __init__(self, stream_id: int, code: int):
        super().__init__(stream_id, code)
        self.stream_id, self.code = stream_id, code


def frame(kind: int, flags: int, stream_id: int, payload: bytes | memoryview = b"") -> bytes:
    """One HTTP/2 frame: the 9-byte header, then `payload`."""
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def _hpack_string(text: bytes) -> bytes:
    """An HPACK string literal (no Huffman coding): its length as a 7-bit-prefix integer, then the bytes."""
    length, prefix = len(text), bytearray()
    if length < 127:
        prefix.append(length)
    else:
        prefix.append(127)
        length -= 127
        while length >= 128:
            prefix.append(length % 128 + 128)
            length //= 128
        prefix.append(length)
    return bytes(prefix) + text


def header_block(fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """`fields` as an HPACK block of literals without indexing (new names): no state on either side."""
    return b"".join(b"\x00" + _hpack_string(name) + _hpack_string(value) for name, value in fields)


@dataclass
class Request:
    """One request stream: its header fields (pseudo-headers included) and the body received so far."""

    stream_id: int
    headers: dict[bytes, bytes]
    body: bytearray


@dataclass(frozen=True)
class Reply:
    """An answer: a header block, a body and a trailer block (None: the header block ends the stream)."""

    head: bytes
    body: bytes = b""
    trailers: bytes | None = None


class Stream:
    """One stream's state on the server: its request, both directions' windows, what waits to be sent."""

    __slots__ = ("pending", "receiving", "recv_unacked", "recv_window", "request", "send_window", "task", "trailers")

    def __init__(self, request: Request, send_window: int):
        self.request = request
        self.receiving = True
        self.recv_window, self.recv_unacked = STREAM_WINDOW, 0
        self.send_window = send_window
        self.pending = memoryview(b"")
        self.trailers: bytes | None = None
        self.task: asyncio.Task[None] | None = None


class Application(Protocol):
    """What a server built on this transport provides."""

    buffer_limit: int  # request bytes buffered per connection before its window stops being replenished

    def check(self, request: Request) -> Reply | None:
        """An early answer for a request whose body is still arriving (e.g. too large), or None to go on."""

    async def handle(self, request: Request) -> Reply:
        """The answer to a complete request; never raises."""


def header_frames(stream_id: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """`block` in a HEADERS frame, split into CONTINUATION frames when over the peer's `max_frame`."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame(HEADERS, flags | END_HEADERS, stream_id, block)
    pieces = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    frames = [frame(HEADERS, flags, stream_id, pieces[0])]
    frames += [frame(CONTINUATION, 0, stream_id, piece) for piece in pieces[1:-1]]
    return b"".join([*frames, frame(CONTINUATION, END_HEADERS, stream_id, pieces[-1])])


def parse_settings(flags: int, stream_id: int, payload: bytes) -> dict[int, int] | None:
    """The values of a SETTINGS frame, checked (RFC 9113 section 6.5.2); None for an acknowledgement.

    HEADER_TABLE_SIZE needs nothing (the server's header blocks never index), nor MAX_CONCURRENT_STREAMS
    (it never pushes), nor MAX_HEADER_LIST_SIZE (its header lists are a few fields under 2 KiB).
    """
    require(stream_id == 0, PROTOCOL_ERROR, "SETTINGS on a stream")
    if flags & ACK:
        require(not payload, FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
        return None
    require(len(payload) % 6 == 0, FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 bytes")
    settings = {
        int.from_bytes(payload[offset : offset + 2], "big"): int.from_bytes(payload[offset + 2 : offset + 6], "big")
        for offset in range(0, len(payload), 6)
    }
    require(settings.get(SETTINGS_ENABLE_PUSH, 0) in (0, 1), PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1")
    window = settings.get(SETTINGS_INITIAL_WINDOW_SIZE, 0)
    require(window <= MAX_WINDOW, FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
    max_frame = settings.get(SETTINGS_MAX_FRAME_SIZE, MAX_FRAME)
    require(MAX_FRAME <= max_frame < 1 << 24, PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
    return settings


def goaway(last_stream: int, code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY frame naming the last stream taken and the error code."""
    return frame(GOAWAY, 0, 0, last_stream.to_bytes(4, "big") + code.to_bytes(4, "big") + debug)


def require(condition: bool, code: int, message: str) -> None:
    """A connection error `code` unless `condition` holds."""
    if not condition:
        raise H2ConnectionError(code, message)


def unpad(flags: int, payload: bytes) -> bytes:
    """The payload of a DATA or HEADERS frame without its padding (PADDED flag)."""
    if not flags & PADDED:
        return payload
    require(len(payload) >= 1 and payload[0] < len(payload), PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]


def request_headers(fields: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The request's header fields by name, or None when malformed (RFC 9113 section 8.2 and 8.3)."""
    headers: dict[bytes, bytes] = {}
    regular = False
    for name, value in fields:
        if name.startswith(b":"):
            if regular or name not in _PSEUDO or name in headers:
                return None
        elif name != name.lower() or name in _CONNECTION_SPECIFIC or (name == b"te" and value != b"trailers"):
            return None
        else:
            regular = True
        headers[name] = value
    return headers if {b":method", b":scheme", b":path"} <= headers.keys() else None


__all__ = [
    "INDEXED_BLOCKS_KEPT",
    "INDEXED_FIELD_BYTES",
    "Stream",
    "HANDSHAKE_S",
    "parse_settings",
    "SETTINGS_INITIAL_WINDOW_SIZE",
    "SETTINGS_MAX_FRAME_SIZE",
    "ACK",
    "Application",
    "COMPRESSION_ERROR",
    "CONNECTION_WINDOW",
    "H2ConnectionError",
    "CONTINUATION",
    "DATA",
    "DEFAULT_WINDOW",
    "END_HEADERS",
    "END_STREAM",
    "ENHANCE_YOUR_CALM",
    "FLOW_CONTROL_ERROR",
    "frame",
    "FRAME_SIZE_ERROR",
    "GOAWAY",
    "goaway",
    "header_block",
    "header_frames",
    "HEADERS",
    "HPACK_ERRORS",
    "INTERNAL_ERROR",
    "LINGER_S",
    "MAX_FRAME",
    "MAX_HEADER_LIST",
    "MAX_STREAMS",
    "MAX_WINDOW",
    "NO_ERROR",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PROTOCOL_ERROR",
    "PUSH_PROMISE",
    "REFUSED_STREAM",
    "Reply",
    "Request",
    "request_headers",
    "require",
    "RST_STREAM",
    "SERVER_SETTINGS",
    "SETTINGS",
    "SHUTDOWN_PING",
    "STREAM_CLOSED",
    "STREAM_WINDOW",
    "StreamError",
    "unpad",
    "WINDOW_UPDATE",
]
