"""HTTP/2 over cleartext with prior knowledge (RFC 9113), the transport of the gRPC server, on asyncio Protocols.

One `H2Connection` per TCP connection parses frames, keeps the peer's settings and both directions'
flow-control windows, and hands each stream to the `Application` once its body is complete (the
application may answer earlier, from `check`, e.g. to refuse a message over the size limit).
Request header blocks are decoded with hpack; the server's own header blocks are literals without
indexing, so it keeps no encoder state and any HEADER_TABLE_SIZE of the peer is honoured.

Bounds: frames up to 16 KiB (the default SETTINGS_MAX_FRAME_SIZE), header blocks and header lists
up to `MAX_HEADER_LIST` bytes, `MAX_STREAMS` concurrent streams (more are refused with
REFUSED_STREAM), request bytes buffered per connection up to the application's `buffer_limit`
(past it no connection WINDOW_UPDATE is sent until streams are answered), DATA never sent beyond
the peer's windows, and no reading while the socket's send buffer is full (a peer that stops
reading stops being read). Connection errors answer GOAWAY and close; stream errors RST_STREAM.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import hpack

from kubeforge.serving import h2_frames as h2
from kubeforge.serving.h2_frames import (
    Application,
    H2ConnectionError,
    Reply,
    Request,
    Stream,
    StreamError,
    frame,
    goaway,
    header_frames,
    parse_settings,
    request_headers,
    require,
    unpad,
)

_LOG = logging.getLogger("kubeforge.serving")


class H2Connection(asyncio.Protocol):
    """The server side of one HTTP/2 connection."""

    def __init__(self, app: Application, connections: set[H2Connection]):
        self.app, self.connections = app, connections
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._preface_seen = self._settings_seen = self._paused = False
        self._draining = self._going_away = False  # first GOAWAY sent; last (with the last stream) sent
        self._decoder = hpack.Decoder(max_header_list_size=h2.MAX_HEADER_LIST)
        self._continuing: tuple[int, bool, bytearray] | None = None  # a header block awaiting CONTINUATION
        self._indexed_blocks: dict[bytes, dict[bytes, bytes] | None] = {}  # blocks of indexed fields, decoded
        self._streams: dict[int, Stream] = {}
        self._blocked: dict[int, Stream] = {}  # streams with DATA waiting for window or socket
        self._last_stream = 0
        self._peer_window = self._peer_initial_window = h2.DEFAULT_WINDOW
        self._peer_max_frame = h2.MAX_FRAME
        self._recv_window, self._recv_unacked, self._buffered = h2.CONNECTION_WINDOW, 0, 0

    # ---- asyncio.Protocol ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the server's SETTINGS and raise the connection's receive window."""
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not its subclasses
        self.connections.add(self)
        settings = b"".join(key.to_bytes(2, "big") + value.to_bytes(4, "big") for key, value in h2.SERVER_SETTINGS)
        increment = (h2.CONNECTION_WINDOW - h2.DEFAULT_WINDOW).to_bytes(4, "big")
        transport.write(frame(h2.SETTINGS, 0, 0, settings) + frame(h2.WINDOW_UPDATE, 0, 0, increment))
        self._handshake = asyncio.get_running_loop().call_later(h2.HANDSHAKE_S, self._handshake_expired)

    def _handshake_expired(self) -> None:
        if not self._settings_seen:
            self._fail(H2ConnectionError(h2.PROTOCOL_ERROR, f"no preface and SETTINGS within {h2.HANDSHAKE_S:g} s"))

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel the calls still running."""
        self.connections.discard(self)
        self._handshake.cancel()
        for stream in self._streams.values():
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        self._blocked.clear()
        self.transport = None

    def pause_writing(self) -> None:
        """The socket's send buffer is full: stop reading until the peer reads."""
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The peer reads again: read again, send what waited."""
        self._paused = False
        if self.transport is not None:
            self.transport.resume_reading()
            self._flush_blocked()

    def data_received(self, data: bytes) -> None:
        """Parse the frames that arrived in full; keep the rest for the next read."""
        if self.transport is None:  # closing after a GOAWAY
            return None
        buffer = self._buffer
        buffer += data
        if not self._preface_seen:
            if not h2.PREFACE.startswith(buffer[:24]):
                return self._fail(H2ConnectionError(h2.PROTOCOL_ERROR, "not the HTTP/2 connection preface (h2c only)"))
            if len(buffer) < 24:
                return None
            del buffer[:24]
            self._preface_seen = True
        position = 0
        try:
            while len(buffer) - position >= 9:
                length = int.from_bytes(buffer[position : position + 3], "big")
                if length > h2.MAX_FRAME:
                    raise H2ConnectionError(h2.FRAME_SIZE_ERROR, f"frame of {length} bytes over {h2.MAX_FRAME}")
                end = position + 9 + length
                if end > len(buffer):
                    break
                kind, flags = buffer[position + 3], buffer[position + 4]
                stream_id = int.from_bytes(buffer[position + 5 : position + 9], "big") & h2.MAX_WINDOW
                payload = bytes(buffer[position + 9 : end])
                position = end
                try:
                    self._frame(kind, flags, stream_id, payload)
                except StreamError as error:
                    self._reset(error.stream_id, error.code)
            del buffer[:position]
            self._replenish_connection()
        except H2ConnectionError as error:
            self._fail(error)
        return None

    # ---- frames in -----------------------------------------------------------------------------------------
    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if not self._settings_seen and kind != h2.SETTINGS:
            raise H2ConnectionError(h2.PROTOCOL_ERROR, "the first frame must be SETTINGS")
        if self._continuing is not None and kind != h2.CONTINUATION:
            raise H2ConnectionError(h2.PROTOCOL_ERROR, "a header block was interrupted by another frame")
        if kind == h2.DATA:
            self._data(flags, stream_id, payload)
        elif kind == h2.HEADERS:
            self._headers(flags, stream_id, payload)
        elif kind == h2.CONTINUATION:
            self._continuation(flags, stream_id, payload)
        elif kind == h2.SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == h2.WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == h2.PING:
            require(stream_id == 0, h2.PROTOCOL_ERROR, "PING on a stream")
            require(len(payload) == 8, h2.FRAME_SIZE_ERROR, "PING of other than 8 bytes")
            if not flags & h2.ACK:
                self._write(frame(h2.PING, h2.ACK, 0, payload))
            elif payload == h2.SHUTDOWN_PING and self._draining:  # calls sent before the first GOAWAY have come
                self._going_away = True
                self._write(goaway(self._last_stream, h2.NO_ERROR))
                if not self._streams:
                    self._shut()
        elif kind == h2.RST_STREAM:
            require(
                stream_id != 0 and stream_id <= self._last_stream, h2.PROTOCOL_ERROR, "RST_STREAM of an idle stream"
            )
            require(len(payload) == 4, h2.FRAME_SIZE_ERROR, "RST_STREAM of other than 4 bytes")
            self._drop(stream_id)
        elif kind == h2.PRIORITY:
            require(stream_id != 0, h2.PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                raise StreamError(stream_id, h2.FRAME_SIZE_ERROR)
        elif kind == h2.GOAWAY:
            require(stream_id == 0, h2.PROTOCOL_ERROR, "GOAWAY on a stream")
        elif kind == h2.PUSH_PROMISE:
            raise H2ConnectionError(h2.PROTOCOL_ERROR, "a client may not push")
        # frames of unknown types are ignored (RFC 9113 section 4.1)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        settings = parse_settings(flags, stream_id, payload)
        if settings is None:  # an acknowledgement of ours
            return
        self._settings_seen = True
        self._handshake.cancel()
        if h2.SETTINGS_INITIAL_WINDOW_SIZE in settings:
            value = settings[h2.SETTINGS_INITIAL_WINDOW_SIZE]
            delta, self._peer_initial_window = value - self._peer_initial_window, value
            for stream in self._streams.values():
                stream.send_window += delta
                require(stream.send_window <= h2.MAX_WINDOW, h2.FLOW_CONTROL_ERROR, "a stream window over 2^31-1")
        self._peer_max_frame = settings.get(h2.SETTINGS_MAX_FRAME_SIZE, self._peer_max_frame)
        self._write(frame(h2.SETTINGS, h2.ACK, 0))
        self._flush_blocked()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        require(len(payload) == 4, h2.FRAME_SIZE_ERROR, "WINDOW_UPDATE of other than 4 bytes")
        increment = int.from_bytes(payload, "big") & h2.MAX_WINDOW
        if stream_id == 0:
            require(increment > 0, h2.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._peer_window += increment
            require(self._peer_window <= h2.MAX_WINDOW, h2.FLOW_CONTROL_ERROR, "connection window over 2^31-1")
            self._flush_blocked()
            return
        require(stream_id <= self._last_stream, h2.PROTOCOL_ERROR, "WINDOW_UPDATE of an idle stream")
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if increment == 0:
            raise StreamError(stream_id, h2.PROTOCOL_ERROR)
        stream.send_window += increment
        if stream.send_window > h2.MAX_WINDOW:
            raise StreamError(stream_id, h2.FLOW_CONTROL_ERROR)
        if stream_id in self._blocked:
            self._send_body(stream)

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        require(stream_id % 2 == 1, h2.PROTOCOL_ERROR, "HEADERS on stream 0 or an even stream")
        fragment = unpad(flags, payload)
        if flags & h2.PRIORITY_FLAG:
            require(len(fragment) >= 5, h2.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            fragment = fragment[5:]
        self._continuing = (stream_id, bool(flags & h2.END_STREAM), bytearray(fragment))
        self._continuation(flags, stream_id, b"")

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuing is None or self._continuing[0] != stream_id:
            raise H2ConnectionError(h2.PROTOCOL_ERROR, "CONTINUATION without a header block on its stream")
        block = self._continuing[2]
        block += payload
        require(len(block) <= h2.MAX_HEADER_LIST, h2.ENHANCE_YOUR_CALM, f"header block over {h2.MAX_HEADER_LIST} bytes")
        if flags & h2.END_HEADERS:
            _, end_stream, _ = self._continuing
            self._continuing = None
            self._header_block(stream_id, end_stream, bytes(block))

    def _decode(self, block: bytes) -> dict[bytes, bytes] | None:
        """The request header fields of `block` (None: malformed). Always decoded, as the decoder's table must
        follow the peer's, except a block of indexed fields only: it leaves the table as it is, so the answer
        to the same bytes is the same until a block that may change the table comes."""
        indexed_only = not block.translate(None, h2.INDEXED_FIELD_BYTES)
        if indexed_only and block in self._indexed_blocks:
            return self._indexed_blocks[block]
        try:
            headers = request_headers(self._decoder.decode(block, raw=True))
        except h2.HPACK_ERRORS as exc:
            raise H2ConnectionError(h2.COMPRESSION_ERROR, f"header block: {exc}") from None
        if not indexed_only or len(self._indexed_blocks) >= h2.INDEXED_BLOCKS_KEPT:
            self._indexed_blocks.clear()
        if indexed_only:
            self._indexed_blocks[block] = headers
        return headers

    def _header_block(self, stream_id: int, end_stream: bool, block: bytes) -> None:
        headers = self._decode(block)
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers of a request
            if not stream.receiving:
                raise StreamError(stream_id, h2.STREAM_CLOSED)
            if not end_stream:
                raise StreamError(stream_id, h2.PROTOCOL_ERROR)
            return self._received(stream)
        require(stream_id > self._last_stream, h2.PROTOCOL_ERROR, f"stream {stream_id} reused or closed")
        self._last_stream = stream_id
        if self._going_away or len(self._streams) >= h2.MAX_STREAMS:
            raise StreamError(stream_id, h2.REFUSED_STREAM)
        if headers is None:
            raise StreamError(stream_id, h2.PROTOCOL_ERROR)
        stream = self._streams[stream_id] = Stream(Request(stream_id, headers, bytearray()), self._peer_initial_window)
        if end_stream:
            self._received(stream)
        return None

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        require(0 < stream_id <= self._last_stream, h2.PROTOCOL_ERROR, "DATA on stream 0 or an idle stream")
        size = len(payload)
        self._recv_window -= size
        require(self._recv_window >= 0, h2.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._recv_unacked += size
        data = unpad(flags, payload)
        stream = self._streams.get(stream_id)
        if stream is None:  # answered and reset already: its DATA in flight is dropped
            return
        if not stream.receiving:
            raise StreamError(stream_id, h2.STREAM_CLOSED)
        stream.recv_window -= size
        if stream.recv_window < 0:
            raise StreamError(stream_id, h2.FLOW_CONTROL_ERROR)
        stream.request.body += data
        self._buffered += len(data)
        early = self.app.check(stream.request) if len(stream.request.body) >= 5 else None
        if early is not None:
            stream.receiving = False
            self._buffered -= len(stream.request.body)
            self._answer(stream, early)
            if stream_id not in self._streams and not flags & h2.END_STREAM:
                # answered in full while the request still comes: the rest of it is not needed
                self._write(frame(h2.RST_STREAM, 0, stream_id, h2.NO_ERROR.to_bytes(4, "big")))
        elif flags & h2.END_STREAM:
            self._received(stream)
        else:
            stream.recv_unacked += size
            if stream.recv_unacked >= h2.STREAM_WINDOW // 2:
                self._write(frame(h2.WINDOW_UPDATE, 0, stream_id, stream.recv_unacked.to_bytes(4, "big")))
                stream.recv_window += stream.recv_unacked
                stream.recv_unacked = 0

    def _received(self, stream: Stream) -> None:
        """The request is complete: hand it to the application."""
        stream.receiving = False
        self._buffered -= len(stream.request.body)
        stream.task = asyncio.get_running_loop().create_task(self._run(stream))

    async def _run(self, stream: Stream) -> None:
        try:
            reply = await self.app.handle(stream.request)
        except Exception:
            _LOG.exception("unexpected error answering HTTP/2 stream %d", stream.request.stream_id)
            self._reset(stream.request.stream_id, h2.INTERNAL_ERROR)
            return
        if self._streams.get(stream.request.stream_id) is stream and self.transport is not None:
            self._answer(stream, reply)

    # ---- frames out ----------------------------------------------------------------------------------------
    def _answer(self, stream: Stream, reply: Reply) -> None:
        ends = reply.trailers is None and not reply.body
        self._write(header_frames(stream.request.stream_id, reply.head, ends, self._peer_max_frame))
        if ends:
            self._close_stream(stream)
            return
        stream.pending, stream.trailers = memoryview(reply.body), reply.trailers
        self._send_body(stream)

    def _send_body(self, stream: Stream) -> None:
        stream_id, frames = stream.request.stream_id, []
        while stream.pending and not self._paused:
            size = min(len(stream.pending), self._peer_window, stream.send_window, self._peer_max_frame)
            if size <= 0:
                break
            frames.append(frame(h2.DATA, 0, stream_id, stream.pending[:size]))
            stream.pending = stream.pending[size:]
            self._peer_window -= size
            stream.send_window -= size
        if stream.pending:
            self._blocked[stream_id] = stream
            self._write(b"".join(frames))
            return
        trailers = stream.trailers
        frames.append(
            frame(h2.DATA, h2.END_STREAM, stream_id)
            if trailers is None
            else header_frames(stream_id, trailers, True, self._peer_max_frame)
        )
        self._write(b"".join(frames))
        self._close_stream(stream)  # after the write: closing may close the connection

    def _flush_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            if self._paused or self._peer_window <= 0:
                return
            del self._blocked[stream.request.stream_id]
            self._send_body(stream)

    def _close_stream(self, stream: Stream) -> None:
        stream_id = stream.request.stream_id
        self._streams.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        if self._going_away and not self._streams:
            self._shut()

    def _drop(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            if stream.receiving:
                self._buffered -= len(stream.request.body)
            if stream.task is not None:
                stream.task.cancel()
            self._close_stream(stream)

    def _reset(self, stream_id: int, code: int) -> None:
        self._write(frame(h2.RST_STREAM, 0, stream_id, code.to_bytes(4, "big")))
        self._drop(stream_id)

    def _replenish_connection(self) -> None:
        if self._recv_unacked >= h2.CONNECTION_WINDOW // 2 and self._buffered <= self.app.buffer_limit:
            self._write(frame(h2.WINDOW_UPDATE, 0, 0, self._recv_unacked.to_bytes(4, "big")))
            self._recv_window += self._recv_unacked
            self._recv_unacked = 0

    def _write(self, data: bytes) -> None:
        if self.transport is not None and data:
            self.transport.write(data)

    def _fail(self, error: H2ConnectionError) -> None:
        _LOG.debug("HTTP/2 connection error %d: %s", error.code, error)  # a peer's fault: no log flood
        self._write(goaway(self._last_stream, error.code, str(error).encode()[:200]))
        self._shut()

    def _shut(self) -> None:
        """Stop reading frames and close once the peer has our last ones (EOF first: no reset losing them)."""
        transport, self.transport = self.transport, None
        if transport is None:
            return
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(h2.LINGER_S, transport.abort)
        else:
            transport.close()

    def go_away(self) -> None:
        """Graceful shutdown (RFC 9113 section 6.8): GOAWAY and a PING; once the PING is acknowledged, GOAWAY
        naming the last stream taken; close once those streams are answered."""
        if self.transport is None or self._draining:
            return
        self._draining = True
        self._write(goaway(h2.MAX_WINDOW, h2.NO_ERROR) + frame(h2.PING, 0, 0, h2.SHUTDOWN_PING))

    def abort(self) -> None:
        """Close at once (the shutdown's grace is over)."""
        if self.transport is not None:
            self.transport.abort()


class H2Server:
    """A listening socket of `H2Connection`s for one application, with graceful shutdown."""

    def __init__(self, app: Application):
        self.app = app
        self.connections: set[H2Connection] = set()
        self.listener: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port); returns the port."""
        loop = asyncio.get_running_loop()
        self.listener = await loop.create_server(
            lambda: H2Connection(self.app, self.connections), host, port, backlog=4096
        )
        return int(self.listener.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float) -> None:
        """Stop listening, GOAWAY every connection, wait up to `grace_s` for their streams, then close the rest."""
        if self.listener is not None:
            self.listener.close()
        for connection in list(self.connections):
            connection.go_away()
        deadline = asyncio.get_running_loop().time() + grace_s
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.abort()


__all__ = ["H2Connection", "H2Server"]
