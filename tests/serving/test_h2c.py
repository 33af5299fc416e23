"""The gRPC server's HTTP/2 transport against hostile and unusual peers speaking raw frames on a socket.

Each peer gets a protocol error (GOAWAY or RST_STREAM) or a gRPC status, and the server goes on
serving the next client. Request header blocks are built with hpack's encoder or as literals
without indexing (stateless, so one block serves any number of streams).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import hpack
import pandas as pd
import pytest

from kubeforge.model_format import load_model
from kubeforge.serving import h2_frames as h2
from kubeforge.serving.app import ServerOptions, create_app
from kubeforge.serving.batching import BatchingOptions
from kubeforge.serving.h2_frames import frame, header_block, header_frames
from kubeforge.serving.oip import grpc_predict_v2_pb2 as pb

from .conftest import CATEGORICAL, MODEL_NAME, Server, TrainedModel, running_endpoints

SERVICE = "/inference.GRPCInferenceService/"


@dataclass
class Answer:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    data_frames: list[int] = field(default_factory=list)  # sizes

    @property
    def status(self) -> int:
        fields = self.trailers or self.headers
        return int(fields[b"grpc-status"])


class Peer:
    """A raw HTTP/2 client: frames in, frames out, no flow control unless the test sends it."""

    def __init__(self, address: str, receive_buffer: int | None = None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.pending = b""

    def send(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(chunks))

    def handshake(self, settings: bytes = b"") -> None:
        self.send(h2.PREFACE, frame(h2.SETTINGS, 0, 0, settings))

    def next_frame(self) -> tuple[int, int, int, bytes] | None:
        """The next frame (type, flags, stream, payload); None once the server closed the connection."""
        while True:
            if len(self.pending) >= 9:
                length = int.from_bytes(self.pending[:3], "big")
                if len(self.pending) >= 9 + length:
                    head, self.pending = self.pending[: 9 + length], self.pending[9 + length :]
                    return head[3], head[4], int.from_bytes(head[5:9], "big") & h2.MAX_WINDOW, head[9:]
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.pending += chunk

    def goaway_code(self) -> int:
        """The error code of the server's GOAWAY, checking the connection is closed after it."""
        while (received := self.next_frame()) is not None:
            kind, _, _, payload = received
            if kind == h2.GOAWAY:
                code = int.from_bytes(payload[4:8], "big")
                while self.next_frame() is not None:
                    pass
                return code
        raise AssertionError("the server closed the connection without GOAWAY")

    def reset_code(self, stream_id: int) -> int:
        """The error code of the server's RST_STREAM on `stream_id`."""
        while (received := self.next_frame()) is not None:
            kind, _, stream, payload = received
            if kind == h2.RST_STREAM and stream == stream_id:
                return int.from_bytes(payload, "big")
        raise AssertionError(f"no RST_STREAM on stream {stream_id}")

    def answer(self, stream_id: int) -> Answer:
        """The server's answer on `stream_id` (other streams' frames are skipped)."""
        answer = Answer()
        while (received := self.next_frame()) is not None:
            kind, flags, stream, payload = received
            if stream != stream_id:
                continue
            if kind == h2.HEADERS:
                fields = dict(self.decoder.decode(payload, raw=True))
                if answer.headers:
                    answer.trailers = fields
                else:
                    answer.headers = fields
            elif kind == h2.DATA:
                answer.body += payload
                answer.data_frames.append(len(payload))
            elif kind == h2.RST_STREAM:
                raise AssertionError(f"stream {stream_id} reset with {int.from_bytes(payload, 'big')}")
            if flags & h2.END_STREAM:
                return answer
        raise AssertionError(f"connection closed before stream {stream_id} was answered")


def call_headers(method: str, *extra: tuple[bytes, bytes]) -> bytes:
    """A stateless request header block for `method` of the inference service."""
    fields = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", (SERVICE + method).encode()),
        (b":authority", b"test"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        *extra,
    ]
    return header_block(fields)


def message(request: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + struct.pack(">I", len(request)) + request


def call(stream_id: int, method: str, request: bytes, *extra: tuple[bytes, bytes]) -> bytes:
    """HEADERS then the message in DATA frames of up to 16 KiB, the last ending the stream."""
    body = message(request)
    pieces = [body[offset : offset + h2.MAX_FRAME] for offset in range(0, len(body), h2.MAX_FRAME)]
    frames = [frame(h2.DATA, 0, stream_id, piece) for piece in pieces[:-1]]
    frames.append(frame(h2.DATA, h2.END_STREAM, stream_id, pieces[-1]))
    return b"".join([frame(h2.HEADERS, h2.END_HEADERS, stream_id, call_headers(method, *extra)), *frames])


@pytest.fixture
def peer(server: Server) -> Iterator[Peer]:
    opened = Peer(server.grpc)
    yield opened
    opened.sock.close()


def assert_serves(server: Server) -> None:
    """A real gRPC client still gets its answer."""
    with grpc.insecure_channel(server.grpc) as channel:
        live = channel.unary_unary(SERVICE + "ServerLive")(b"", timeout=10)
    assert pb.ServerLiveResponse.FromString(live).live


def infer_request(rows: pd.DataFrame) -> bytes:
    """A ModelInferRequest with typed contents (the answer is typed too)."""
    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    for column in rows.columns:
        if column == CATEGORICAL:
            tensor = request.inputs.add(name=column, datatype="BYTES", shape=[len(rows)])
            tensor.contents.bytes_contents.extend(value.encode() for value in rows[column])
        else:
            tensor = request.inputs.add(name=column, datatype="FP64", shape=[len(rows)])
            tensor.contents.fp64_contents.extend(rows[column].tolist())
    return request.SerializeToString()


def metadata_request() -> bytes:
    return pb.ModelMetadataRequest(name=MODEL_NAME).SerializeToString()


@pytest.mark.parametrize("size", [0, 126, 127, 128, 300, 40000])
def test_header_blocks_decode_with_hpack_and_split_at_the_peers_frame_size(size: int) -> None:
    fields = [(b"grpc-status", b"3"), (b"grpc-message", b"m" * size)]
    block = header_block(fields)
    assert hpack.Decoder(max_header_list_size=1 << 20).decode(block, raw=True) == fields
    peer = Peer.__new__(Peer)  # frames parsed from bytes, no socket
    peer.pending = header_frames(5, block, True, h2.MAX_FRAME)
    frames = []
    while peer.pending:
        got = peer.next_frame()
        assert got is not None
        frames.append(got)
    last = len(frames) - 1
    expected = [(h2.HEADERS, h2.END_STREAM | (h2.END_HEADERS if last == 0 else 0))]
    expected += [(h2.CONTINUATION, h2.END_HEADERS if i == last else 0) for i in range(1, last + 1)]
    assert [(kind, flags) for kind, flags, _, _ in frames] == expected
    assert len(frames) == -(-len(block) // h2.MAX_FRAME) and all(stream == 5 for _, _, stream, _ in frames)
    assert b"".join(payload for _, _, _, payload in frames) == block


def test_indexed_header_blocks_follow_the_peers_table(server: Server, peer: Peer) -> None:
    """The same indexed-only bytes name another method once a block has changed the decoder's table."""

    def string(text: bytes) -> bytes:
        return bytes([len(text)]) + text

    def adds(method: str) -> bytes:  # :path then content-type, each a literal with incremental indexing
        return b"\x44" + string((SERVICE + method).encode()) + b"\x5f" + string(b"application/grpc")

    indexed = b"\x83\x86\xbf\xbe"  # :method POST, :scheme http, dynamic entries 63 and 62
    blocks = [b"\x83\x86" + adds("ModelMetadata"), indexed, indexed]
    blocks += [b"\x20\x3f\xe1\x1f\x83\x86" + adds("ServerMetadata"), indexed]  # table emptied, then refilled
    peer.handshake()
    names = []
    for number, block in enumerate(blocks):
        stream_id = 2 * number + 1
        data = frame(h2.DATA, h2.END_STREAM, stream_id, message(metadata_request()))
        peer.send(frame(h2.HEADERS, h2.END_HEADERS, stream_id, block), data)
        names.append(pb.ModelMetadataResponse.FromString(peer.answer(stream_id).body[5:]).name)
    assert names == [MODEL_NAME] * 3 + ["kubeforge"] * 2


def test_a_call_with_padding_priority_and_continuation_is_answered(server: Server, peer: Peer) -> None:
    peer.handshake()
    block = call_headers("ModelMetadata")
    padded = bytes([3]) + struct.pack(">IB", 0, 16) + block[:20] + b"\0\0\0"
    peer.send(
        frame(h2.HEADERS, h2.PADDED | h2.PRIORITY_FLAG, 1, padded),
        frame(h2.CONTINUATION, 0, 1, block[20:40]),
        frame(h2.CONTINUATION, h2.END_HEADERS, 1, block[40:]),
        frame(h2.PING, 0, 0, b"12345678"),
        frame(h2.DATA, h2.PADDED | h2.END_STREAM, 1, bytes([5]) + message(metadata_request()) + b"\0" * 5),
    )
    answer = peer.answer(1)
    assert answer.headers[b":status"] == b"200" and answer.status == 0
    assert pb.ModelMetadataResponse.FromString(answer.body[5:]).name == MODEL_NAME
    peer.send(frame(h2.PING, 0, 0, b"abcdefgh"))
    assert (h2.PING, h2.ACK, 0, b"abcdefgh") in iter(peer.next_frame, None)


def test_an_answer_waits_for_the_peers_stream_window(server: Server, trained: TrainedModel, peer: Peer) -> None:
    """A peer allowing 1,000 bytes a stream gets 1,000 bytes, then the rest once it sends WINDOW_UPDATE."""
    peer.handshake(struct.pack(">HI", 0x4, 1000))  # SETTINGS_INITIAL_WINDOW_SIZE
    rows = trained.features.head(100)
    peer.send(call(1, "ModelInfer", infer_request(rows)))
    body = b""
    while len(body) < 1000:
        got = peer.next_frame()
        assert got is not None
        if got[0] == h2.DATA:
            body += got[3]
    peer.send(frame(h2.PING, 0, 0, b"blocked?"))  # answered in order: no DATA may come before its ACK
    while (got := peer.next_frame()) != (h2.PING, h2.ACK, 0, b"blocked?"):
        assert got is not None and got[0] != h2.DATA
    assert len(body) == 1000
    peer.send(frame(h2.WINDOW_UPDATE, 0, 1, (1 << 20).to_bytes(4, "big")))
    rest = peer.answer(1)
    assert rest.status == 0
    answer = pb.ModelInferResponse.FromString((body + rest.body)[5:])
    labels = [value.decode() for value in answer.outputs[0].contents.bytes_contents]
    assert labels == server.model.predict_frame(rows).labels


def test_garbage_preface_gets_goaway(server: Server, peer: Peer) -> None:
    peer.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    assert peer.goaway_code() == h2.PROTOCOL_ERROR
    assert_serves(server)


def test_a_peer_that_never_finishes_its_handshake_gets_goaway(
    server: Server, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h2, "HANDSHAKE_S", 0.2)
    peer.send(h2.PREFACE[:10])  # then nothing
    assert peer.goaway_code() == h2.PROTOCOL_ERROR
    assert_serves(server)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([(16385).to_bytes(3, "big") + bytes((h2.DATA, 0)) + b"\0\0\0\1"], h2.FRAME_SIZE_ERROR),
        ([frame(h2.WINDOW_UPDATE, 0, 0, h2.MAX_WINDOW.to_bytes(4, "big"))], h2.FLOW_CONTROL_ERROR),
        ([frame(h2.HEADERS, 0, 1, b"\0" * 16000), frame(h2.CONTINUATION, 0, 1, b"\0" * 1000)], h2.ENHANCE_YOUR_CALM),
        ([frame(h2.HEADERS, 0, 1, call_headers("ServerLive")), frame(h2.PING, 0, 0, b"x" * 8)], h2.PROTOCOL_ERROR),
        ([frame(h2.DATA, 0, 7, b"\0")], h2.PROTOCOL_ERROR),  # on a stream never opened
        ([frame(h2.PUSH_PROMISE, h2.END_HEADERS, 1, b"\0\0\0\2")], h2.PROTOCOL_ERROR),
        ([frame(h2.SETTINGS, 0, 0, struct.pack(">HI", 0x5, 100))], h2.PROTOCOL_ERROR),  # MAX_FRAME_SIZE too small
    ],
    ids=[
        "oversized-frame",
        "window-overflow",
        "header-block-bomb",
        "interrupted-block",
        "idle-stream",
        "push",
        "settings",
    ],
)
def test_protocol_violations_get_goaway_and_the_server_goes_on(
    server: Server, peer: Peer, frames: list[bytes], code: int
) -> None:
    peer.handshake()
    peer.send(*frames)
    assert peer.goaway_code() == code
    assert_serves(server)


def test_a_decompression_bomb_gets_goaway(server: Server, peer: Peer) -> None:
    """A 2 KB header value indexed once, then referenced over and over: over the header list limit decoded."""
    peer.handshake()
    big = ("x-bomb", "b" * 2000)
    call_fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", SERVICE + "Nope"),
        ("content-type", "application/grpc"),
    ]
    first = peer.encoder.encode([*call_fields, big])
    peer.send(frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, first))
    assert peer.answer(1).status == 12  # UNIMPLEMENTED: no such method
    bomb = peer.encoder.encode([*call_fields, *[big] * 9])
    assert len(bomb) < 100
    peer.send(frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, bomb))
    assert peer.goaway_code() == h2.COMPRESSION_ERROR
    assert_serves(server)


def test_stream_id_reuse_gets_goaway(server: Server, peer: Peer) -> None:
    peer.handshake()
    peer.send(call(1, "ServerLive", b""))
    assert peer.answer(1).status == 0
    peer.send(call(1, "ServerLive", b""))
    assert peer.goaway_code() == h2.PROTOCOL_ERROR
    assert_serves(server)


def test_stream_errors_reset_the_stream_and_the_connection_goes_on(server: Server, peer: Peer) -> None:
    peer.handshake()
    peer.send(frame(h2.HEADERS, h2.END_HEADERS, 1, call_headers("ServerLive")))
    peer.send(frame(h2.WINDOW_UPDATE, 0, 1, h2.MAX_WINDOW.to_bytes(4, "big")))
    assert peer.reset_code(1) == h2.FLOW_CONTROL_ERROR
    malformed = header_block([(b":method", b"POST"), (b":path", b"/x"), (b"Upper", b"case")])  # no :scheme
    peer.send(frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, malformed))
    assert peer.reset_code(3) == h2.PROTOCOL_ERROR
    peer.send(call(5, "ServerLive", b""))
    assert peer.answer(5).status == 0


def test_grpc_errors_of_the_transport_come_as_statuses(server: Server, peer: Peer) -> None:
    peer.handshake()
    peer.send(call(1, "ServerLive", b"", (b"grpc-encoding", b"gzip")))
    assert peer.answer(1).status == 12  # UNIMPLEMENTED
    peer.send(call(3, "ServerLive", b"\x1f\x8b", (b"grpc-encoding", b"identity")).replace(b"\0\0\0\0\2", b"\1\0\0\0\2"))
    assert peer.answer(3).status == 13  # compressed flag without an encoding: INTERNAL
    peer.send(call(5, "NoSuchMethod", b""))
    assert peer.answer(5).status == 12
    peer.send(call(7, "ModelMetadata", b"\xff\xff\xff"))
    assert peer.answer(7).status == 3  # not a protobuf message: INVALID_ARGUMENT
    peer.send(call(9, "ServerLive", b"", (b"grpc-timeout", b"forever")))
    assert peer.answer(9).status == 3
    not_grpc = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/x"), (b"content-type", b"text/plain")]
    peer.send(frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 11, header_block(not_grpc)))
    answer = peer.answer(11)
    assert answer.headers[b":status"] == b"415" and b"application/grpc" in answer.body


def test_real_clients_read_unimplemented_compression_and_percent_encoded_messages(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as compressed:
            channel.unary_unary(SERVICE + "ServerLive")(b"", timeout=10, compression=grpc.Compression.Gzip)
        assert compressed.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
        assert "grpc-encoding" in compressed.value.details()  # type: ignore[attr-defined]
        request = pb.ModelMetadataRequest(name="modèle 100%").SerializeToString()
        with pytest.raises(grpc.RpcError) as unknown:
            channel.unary_unary(SERVICE + "ModelMetadata")(request, timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        assert "'modèle 100%' is not served here" in unknown.value.details()  # type: ignore[attr-defined]


def test_grpc_timeout_passed_while_waiting_for_a_batch_is_deadline_exceeded(trained: TrainedModel) -> None:
    options = ServerOptions(batching=BatchingOptions(max_batch_size=1000, max_wait_ms=2000))
    app = create_app({MODEL_NAME: load_model(trained.directory, name=MODEL_NAME)}, options=options)
    with running_endpoints(app) as endpoints:
        peer = Peer(endpoints.grpc)
        peer.handshake()
        peer.send(call(1, "ModelInfer", infer_request(trained.features.head(1)), (b"grpc-timeout", b"50m")))
        answer = peer.answer(1)
        assert answer.status == 4 and b"grpc-timeout" in answer.headers[b"grpc-message"]
        peer.sock.close()


def test_an_oversized_message_is_refused_from_its_prefix(server: Server, peer: Peer) -> None:
    """RESOURCE_EXHAUSTED as soon as the 5-byte prefix declares too much, then RST_STREAM(NO_ERROR)."""
    peer.handshake()
    peer.send(frame(h2.HEADERS, h2.END_HEADERS, 1, call_headers("ModelInfer")), frame(h2.DATA, 0, 1, b"\0\x7f\0\0\0"))
    answer = peer.answer(1)
    assert answer.status == 8 and b"over the server's limit" in answer.headers[b"grpc-message"]
    assert peer.reset_code(1) == h2.NO_ERROR
    peer.send(frame(h2.DATA, h2.END_STREAM, 1, b"\0" * 100))  # in flight when the reset came: dropped
    peer.send(call(3, "ServerLive", b""))
    assert peer.answer(3).status == 0


def test_buffered_requests_over_the_limit_hold_back_the_connection_window(server: Server, peer: Peer) -> None:
    """10 MiB of unfinished messages (over the server's buffer limit): no connection WINDOW_UPDATE until they end."""
    peer.handshake()
    assert [peer.next_frame()[0] for _ in range(2)] == [h2.SETTINGS, h2.WINDOW_UPDATE]  # type: ignore[index]
    size, streams = 250 * 1024, range(1, 81, 2)
    body = message(b"\0" * size)
    for stream_id in streams:
        peer.send(frame(h2.HEADERS, h2.END_HEADERS, stream_id, call_headers("ModelInfer")))
        pieces = [body[offset : offset + h2.MAX_FRAME] for offset in range(0, len(body), h2.MAX_FRAME)]
        peer.send(*(frame(h2.DATA, 0, stream_id, piece) for piece in pieces))
    peer.send(frame(h2.PING, 0, 0, b"buffered"))
    while (got := peer.next_frame()) != (h2.PING, h2.ACK, 0, b"buffered"):
        assert got is not None and (got[0], got[2]) != (h2.WINDOW_UPDATE, 0)
    peer.send(*(frame(h2.DATA, h2.END_STREAM, stream_id, b"") for stream_id in streams))
    statuses: dict[int, bytes] = {}
    released = 0
    while len(statuses) < len(streams) or released < len(streams) * len(body):
        got = peer.next_frame()
        assert got is not None
        if got[0] == h2.HEADERS:
            statuses[got[2]] = dict(peer.decoder.decode(got[3], raw=True))[b"grpc-status"]
        elif (got[0], got[2]) == (h2.WINDOW_UPDATE, 0):
            released += int.from_bytes(got[3], "big")
    assert set(statuses.values()) == {b"3"}  # zeros are no ModelInferRequest: INVALID_ARGUMENT


def test_a_half_sent_message_holds_only_its_stream(server: Server, peer: Peer) -> None:
    peer.handshake()
    peer.send(frame(h2.HEADERS, h2.END_HEADERS, 1, call_headers("ModelMetadata")))
    peer.send(frame(h2.DATA, 0, 1, message(metadata_request())[:6]))
    assert_serves(server)
    peer.send(call(3, "ServerLive", b""))
    assert peer.answer(3).status == 0
    peer.send(frame(h2.DATA, h2.END_STREAM, 1, b""))  # the message ends cut short
    answer = peer.answer(1)
    assert answer.status == 13 and b"without a complete request message" in answer.headers[b"grpc-message"]


def test_more_streams_than_allowed_are_refused_and_the_rest_answered(server: Server, peer: Peer) -> None:
    peer.handshake()
    ids = range(1, 2 * (h2.MAX_STREAMS + 10), 2)
    peer.send(*(frame(h2.HEADERS, h2.END_HEADERS, i, call_headers("ServerReady")) for i in ids))
    refused = {ids[h2.MAX_STREAMS + n] for n in range(10)}
    seen: set[int] = set()
    while seen != refused:
        got = peer.next_frame()
        assert got is not None
        if got[0] == h2.RST_STREAM:
            assert int.from_bytes(got[3], "big") == h2.REFUSED_STREAM
            seen.add(got[2])
    peer.send(*(frame(h2.DATA, h2.END_STREAM, i, message(b"")) for i in ids[: h2.MAX_STREAMS]))
    answered = 0
    while answered < h2.MAX_STREAMS:
        got = peer.next_frame()
        assert got is not None
        if got[0] == h2.HEADERS and got[1] & h2.END_STREAM:
            answered += 1
    assert_serves(server)


def test_a_peer_that_stops_reading_is_not_buffered_without_bound(server: Server) -> None:
    """Windows wide open, calls keep coming, answers never read: the server stops reading too, serves others."""
    stalled = Peer(server.grpc, receive_buffer=1 << 16)
    stalled.handshake(struct.pack(">HI", 0x4, h2.MAX_WINDOW))  # SETTINGS_INITIAL_WINDOW_SIZE
    stalled.send(frame(h2.WINDOW_UPDATE, 0, 0, (h2.MAX_WINDOW - h2.DEFAULT_WINDOW).to_bytes(4, "big")))
    stalled.sock.settimeout(3)
    request = metadata_request()  # about 100 bytes of call for 2 KB of answer
    sent = 0
    try:
        for stream_id in range(1, 2**31, 2):
            chunk = call(stream_id, "ModelMetadata", request)
            stalled.sock.sendall(chunk)
            sent += len(chunk)
            assert sent < 16 << 20, "the server kept reading calls of a peer that reads no answer"
    except TimeoutError:
        pass
    assert_serves(server)
    stalled.sock.close()
    assert_serves(server)
