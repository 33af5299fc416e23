"""A lean HTTP/1.1 server for the scheduler API: one asyncio protocol per connection on httptools' C parser.

A submission is a small request whose cost is mostly the server's own per-request work, so
this server parses in C, hands the API a `Request` without building ASGI messages, and
answers with one write. Keep-alive and pipelining work; one connection's requests are
answered in order. uvloop drives the event loop when it is installed. The API stays a
plain ASGI application too, for any ASGI server.

Every connection is bounded (`ServerLimits`): the request line and headers together (431
past the cap), the body (413), how long a request may take to arrive (408), how long a
connection may sit idle, how many connections are open, and how much of the answers a
client that does not read may leave buffered (the server stops reading from it and waits).
With a certificate and key it serves HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import signal
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

import httptools

from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.api_io import MAX_BODY_BYTES, Request, Response, error_response

_LOG = logging.getLogger("kubeforge.scheduler.http")
MAX_QUEUED_REQUESTS = 32
"""Pipelined requests parsed ahead on one connection before it stops reading."""
_HEAD_SLICE = 4096
"""While a request's head is arriving, data is parsed in slices of this size, so that its size is known."""
LINGER_S = 2.0
"""After an error answer, what the client still sends is read and dropped this long before closing, so that
the close does not reset the connection before the client has read the answer."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PHRASES = {status.value: status.phrase.encode() for status in http.HTTPStatus}


@dataclass(frozen=True)
class ServerLimits:
    """What one client may take of the server."""

    max_head_bytes: int = 16 * 1024
    """Request line plus headers; a larger head is answered 431."""
    header_timeout_s: float = 10.0
    """From the connection (or the request's first byte) to the end of its headers; then 408."""
    body_timeout_s: float = 30.0
    """From the end of the headers to the end of the body; then 408."""
    idle_timeout_s: float = 60.0
    """A kept-alive connection with no request, or one whose client stopped reading answers, is closed."""
    max_connections: int = 1024
    """Connections past this are answered 503 and closed."""
    write_buffer_bytes: int = 256 * 1024
    """Answers buffered for a client beyond this pause the connection until the client reads."""


@dataclass
class _Parsed:
    url: bytes = b""
    authorization: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class _Connection(asyncio.Protocol):
    """Parses requests off one connection and answers them in order."""

    def __init__(self, api: SchedulerAPI, live: set[_Connection], limits: ServerLimits) -> None:
        self._api = api
        self._live = live
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._parsed = _Parsed()
        self._queued: deque[tuple[Request | None, bool]] = deque()
        self._answering = False
        self._read_paused_for_queue = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._client = ""
        self._in_head = True
        self._head_bytes = 0
        self._in_request = False
        self._deadline: float | None = time.monotonic() + limits.header_timeout_s
        self._timeout_status = 408
        self._discarding = False

    # -- connection lifecycle -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if len(self._live) >= self._limits.max_connections:
            self._fail(503, "too many connections; retry shortly", linger=False)
            return
        self._live.add(self)
        self._transport.set_write_buffer_limits(high=self._limits.write_buffer_bytes)
        peer = transport.get_extra_info("peername")
        self._client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._live.discard(self)
        self._writable.set()  # an answer waiting to be written gives up

    def close(self) -> None:
        """Close the connection (the server is stopping)."""
        if self._transport is not None:
            self._transport.close()

    def pause_writing(self) -> None:
        self._writable.clear()
        self._deadline = time.monotonic() + self._limits.idle_timeout_s
        self._timeout_status = 0
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writable.set()
        if self._transport is not None and not self._read_paused_for_queue:
            self._transport.resume_reading()

    def expire(self, now: float) -> None:
        """Close the connection when its current deadline has passed (while an answer is being written
        only a client that stopped reading times out)."""
        if self._deadline is None or now < self._deadline or (self._answering and self._writable.is_set()):
            return
        if self._timeout_status and self._in_request and not self._discarding:
            self._fail(self._timeout_status, "request not received in time")
        else:
            self.close()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        try:
            while data and self._transport is not None and not self._discarding:
                if self._in_head:  # slices, so that a head past the cap is noticed within a slice of it
                    piece, data = data[:_HEAD_SLICE], data[_HEAD_SLICE:]
                else:
                    piece, data = data, b""
                self._parser.feed_data(piece)
                if self._in_head and self._in_request:
                    self._head_bytes += len(piece)
                    if self._head_bytes > self._limits.max_head_bytes:
                        self._fail(431, f"request line and headers over {self._limits.max_head_bytes} bytes")
                        return
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsed = _Parsed()
        self._in_head, self._in_request, self._head_bytes = True, True, 0
        self._deadline, self._timeout_status = time.monotonic() + self._limits.header_timeout_s, 408

    def on_url(self, url: bytes) -> None:
        self._parsed.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"authorization":
            self._parsed.authorization = value
        elif lowered == b"expect" and value.lower() == b"100-continue" and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._deadline = time.monotonic() + self._limits.body_timeout_s

    def on_body(self, body: bytes) -> None:
        self._parsed.size += len(body)
        if self._parsed.size <= MAX_BODY_BYTES:
            self._parsed.chunks.append(body)

    def on_message_complete(self) -> None:
        parsed = self._parsed
        self._in_head, self._in_request, self._deadline = True, False, None
        request: Request | None = None
        if parsed.size <= MAX_BODY_BYTES:
            path, _, query = parsed.url.partition(b"?")
            method = self._parser.get_method().decode("ascii", "replace")
            body = b"".join(parsed.chunks)
            path_text = unquote(path.decode("latin-1"))
            request = Request(method, path_text, query, parsed.authorization, body, self._client)
        self._queued.append((request, self._parser.should_keep_alive()))
        if len(self._queued) >= MAX_QUEUED_REQUESTS and self._transport is not None:
            self._transport.pause_reading()
            self._read_paused_for_queue = True
        if not self._answering:
            self._answering = True
            asyncio.get_running_loop().create_task(self._answer_queued())

    # -- answering ------------------------------------------------------------------------

    async def _answer_queued(self) -> None:
        try:
            while self._queued:
                request, keep_alive = self._queued.popleft()
                if request is None:
                    self._fail(413, f"request body over {MAX_BODY_BYTES} bytes")
                    return
                response = await self._api.respond(request)
                await self._writable.wait()  # the client reads what was written before more is written
                if self._transport is None or self._transport.is_closing() or self._discarding:
                    return
                self._transport.write(_response(response, keep_alive))
                if not keep_alive:
                    self._transport.close()
                    return
                if self._read_paused_for_queue and len(self._queued) < MAX_QUEUED_REQUESTS // 2:
                    self._read_paused_for_queue = False
                    if self._writable.is_set():
                        self._transport.resume_reading()
        finally:
            self._answering = False
            if not self._in_request and self._writable.is_set():
                self._deadline, self._timeout_status = time.monotonic() + self._limits.idle_timeout_s, 0

    def _fail(self, status: int, message: str, linger: bool = True) -> None:
        """Answer with an error and close: nothing after a malformed or oversized request can be trusted.
        With `linger`, the writing side is shut first and what still arrives is dropped for LINGER_S."""
        self._queued.clear()
        if self._transport is None or self._discarding:
            return
        self._transport.write(_response(error_response(status, message), keep_alive=False))
        if linger and self._transport.can_write_eof():
            self._discarding = True
            self._deadline, self._timeout_status = time.monotonic() + LINGER_S, 0
            self._transport.write_eof()
        else:
            self._transport.close()
            self._transport = None


def _response(response: Response, keep_alive: bool) -> bytes:
    extra = b"".join(b"%s: %s\r\n" % header for header in response.headers)
    connection = b"" if keep_alive else b"connection: close\r\n"
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
        response.status,
        _PHRASES.get(response.status, b""),
        response.content_type,
        len(response.body),
        extra,
        connection,
    )
    return head + response.body


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or later) from a PEM certificate chain and its key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


async def _serve(
    api: SchedulerAPI,
    host: str,
    port: int,
    stop: asyncio.Event,
    bound: Callable[[int], None],
    limits: ServerLimits,
    tls: ssl.SSLContext | None,
) -> None:
    loop = asyncio.get_running_loop()
    live: set[_Connection] = set()
    server = await loop.create_server(
        lambda: _Connection(api, live, limits), host, port, reuse_address=True, backlog=1024, ssl=tls
    )
    bound(int(server.sockets[0].getsockname()[1]))
    period = min(limits.header_timeout_s, limits.body_timeout_s, limits.idle_timeout_s) / 4
    async with server:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            now = time.monotonic()
            for connection in list(live):
                connection.expire(now)
        for connection in list(live):
            connection.close()
        await asyncio.sleep(0)  # let the transports finish closing


def serve_forever(
    api: SchedulerAPI, host: str, port: int, limits: ServerLimits = ServerLimits(), tls: ssl.SSLContext | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then record what is still queued and return."""
    loop = new_event_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(_serve(api, host, port, stop, lambda _port: None, limits, tls))
    finally:
        api.close()
        loop.close()


@contextmanager
def serving_in_thread(
    api: SchedulerAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: ServerLimits = ServerLimits(),
    tls: ssl.SSLContext | None = None,
) -> Iterator[str]:
    """Serve `api` from a thread until the block ends (port 0: a free one); yields the base URL."""
    loop = new_event_loop()
    stop = asyncio.Event()
    ports: list[int] = []
    ready = threading.Event()

    def bound(found: int) -> None:
        ports.append(found)
        ready.set()

    def run() -> None:
        try:
            loop.run_until_complete(_serve(api, host, port, stop, bound, limits, tls))
        except Exception:
            _LOG.exception("the scheduler API server stopped")
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="kubeforge-scheduler-http", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    try:
        if not ports:
            raise RuntimeError(f"the scheduler API could not listen on {host}:{port}; the log has the reason")
        yield f"{'https' if tls else 'http'}://{host}:{ports[0]}"
    finally:
        with contextlib.suppress(RuntimeError):  # the loop has already stopped
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        api.close()
        loop.close()


__all__ = ["MAX_QUEUED_REQUESTS", "ServerLimits", "new_event_loop", "serve_forever", "serving_in_thread", "tls_context"]
