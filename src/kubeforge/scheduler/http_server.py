"""A lean HTTP/1.1 server for the scheduler API: one asyncio protocol per connection on httptools' C parser.

A submission is a small request whose cost is mostly the server's own per-request work, so
this server parses in C, hands the API a `Request` without building ASGI messages, and
answers with one write. Keep-alive and pipelining work; one connection's requests are
answered in order. uvloop drives the event loop when it is installed. The API stays a
plain ASGI application too, for any ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

import httptools

from kubeforge.scheduler.api import JSON, MAX_BODY_BYTES, Request, SchedulerAPI

_LOG = logging.getLogger("kubeforge.scheduler.http")
MAX_QUEUED_REQUESTS = 32
"""Pipelined requests parsed ahead on one connection before it stops reading."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PHRASES = {status.value: status.phrase.encode() for status in http.HTTPStatus}


@dataclass
class _Parsed:
    url: bytes = b""
    authorization: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class _Connection(asyncio.Protocol):
    """Parses requests off one connection and answers them in order."""

    def __init__(self, api: SchedulerAPI, live: set[_Connection]) -> None:
        self._api = api
        self._live = live
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._parsed = _Parsed()
        self._queued: deque[tuple[Request | None, bool]] = deque()
        self._answering = False
        self._paused = False
        self._client = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self)
        peer = transport.get_extra_info("peername")
        self._client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._live.discard(self)

    def close(self) -> None:
        """Close the connection (the server is stopping)."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsed = _Parsed()

    def on_url(self, url: bytes) -> None:
        self._parsed.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"authorization":
            self._parsed.authorization = value
        elif lowered == b"expect" and value.lower() == b"100-continue" and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._parsed.size += len(body)
        if self._parsed.size <= MAX_BODY_BYTES:
            self._parsed.chunks.append(body)

    def on_message_complete(self) -> None:
        parsed = self._parsed
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
            self._paused = True
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
                status, content_type, data = await self._api.respond(request)
                if self._transport is None:
                    return
                self._transport.write(_response(status, content_type, data, keep_alive))
                if not keep_alive:
                    self._transport.close()
                    return
                if self._paused and len(self._queued) < MAX_QUEUED_REQUESTS // 2:
                    self._transport.resume_reading()
                    self._paused = False
        finally:
            self._answering = False

    def _fail(self, status: int, message: str) -> None:
        """Answer with an error and close: nothing after a malformed or oversized request can be trusted."""
        self._queued.clear()
        if self._transport is not None:
            data = json.dumps({"error": message}).encode()
            self._transport.write(_response(status, JSON, data, keep_alive=False))
            self._transport.close()


def _response(status: int, content_type: bytes, data: bytes, keep_alive: bool) -> bytes:
    connection = b"" if keep_alive else b"connection: close\r\n"
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _PHRASES.get(status, b""),
        content_type,
        len(data),
        connection,
    )
    return head + data


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _serve(api: SchedulerAPI, host: str, port: int, stop: asyncio.Event, bound: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    live: set[_Connection] = set()
    server = await loop.create_server(lambda: _Connection(api, live), host, port, reuse_address=True, backlog=1024)
    bound(int(server.sockets[0].getsockname()[1]))
    async with server:
        await stop.wait()
        for connection in list(live):
            connection.close()
        await asyncio.sleep(0)  # let the transports finish closing


def serve_forever(api: SchedulerAPI, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then record what is still queued and return."""
    loop = new_event_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(_serve(api, host, port, stop, lambda _port: None))
    finally:
        api.close()
        loop.close()


@contextmanager
def serving_in_thread(api: SchedulerAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
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
            loop.run_until_complete(_serve(api, host, port, stop, bound))
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
        yield f"http://{host}:{ports[0]}"
    finally:
        with contextlib.suppress(RuntimeError):  # the loop has already stopped
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        api.close()
        loop.close()


__all__ = ["MAX_QUEUED_REQUESTS", "new_event_loop", "serve_forever", "serving_in_thread"]
