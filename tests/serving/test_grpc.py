"""OIP v2 over gRPC beyond what tritonclient sends: typed contents, limits, overload, metrics, the .proto."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
from google.protobuf import descriptor_pb2

from kubeforge.errors import ServingError
from kubeforge.model_format import load_model
from kubeforge.serving.app import ServerOptions, create_app
from kubeforge.serving.batching import BatchingOptions
from kubeforge.serving.grpc_server import start_grpc_server
from kubeforge.serving.oip import grpc_predict_v2_pb2 as pb

from .conftest import CATEGORICAL, MODEL_NAME, TEST_MAX_BODY_BYTES, Server, TrainedModel, running_endpoints

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "/inference.GRPCInferenceService/"


@pytest.fixture
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc) as opened:
        yield opened


def _call(channel: grpc.Channel, method: str, request: object, response: type) -> object:
    stub = channel.unary_unary(
        SERVICE + method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response.FromString
    )
    return stub(request, timeout=30)


def _request(rows: pd.DataFrame, raw: bool, name: str = MODEL_NAME) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=name, id="q")
    for column in rows.columns:
        datatype = "BYTES" if column == CATEGORICAL else "FP64"
        tensor = request.inputs.add(name=column, datatype=datatype, shape=[len(rows)])
        values = rows[column]
        if datatype == "BYTES":
            encoded = [value.encode() for value in values]
            if raw:
                request.raw_input_contents.append(b"".join(len(v).to_bytes(4, "little") + v for v in encoded))
            else:
                tensor.contents.bytes_contents.extend(encoded)
        elif raw:
            request.raw_input_contents.append(values.to_numpy("<f8").tobytes())
        else:
            tensor.contents.fp64_contents.extend(values.tolist())
    return request


def test_typed_contents_answer_typed_and_match_raw(channel: grpc.Channel, trained: TrainedModel) -> None:
    rows = trained.features.head(9)
    typed = _call(channel, "ModelInfer", _request(rows, raw=False), pb.ModelInferResponse)
    raw = _call(channel, "ModelInfer", _request(rows, raw=True), pb.ModelInferResponse)
    assert isinstance(typed, pb.ModelInferResponse) and isinstance(raw, pb.ModelInferResponse)
    assert not typed.raw_output_contents and len(raw.raw_output_contents) == 2
    assert (typed.id, typed.model_name, typed.model_version) == ("q", MODEL_NAME, "1")
    labels = [value.decode() for value in typed.outputs[0].contents.bytes_contents]
    probabilities = np.asarray(typed.outputs[1].contents.fp32_contents, dtype=np.float32)
    assert probabilities.tobytes() == raw.raw_output_contents[1]
    assert list(typed.outputs[1].shape) == [len(rows), 2]
    expected = load_model(trained.directory, name=MODEL_NAME).predict_frame(rows)
    assert labels == expected.labels


@pytest.mark.parametrize(
    ("edit", "code", "fragment"),
    [
        (lambda r: r.raw_input_contents.pop(), grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents: 30 entries"),
        (lambda r: setattr(r, "model_version", "7"), grpc.StatusCode.NOT_FOUND, "only version 1"),
        (lambda r: r.outputs.add(name="logits"), grpc.StatusCode.INVALID_ARGUMENT, "outputs[0].name: 'logits'"),
        (lambda r: r.inputs[1].shape.append(3), grpc.StatusCode.INVALID_ARGUMENT, "inputs[1].shape"),
        (lambda r: setattr(r.inputs[2], "name", r.inputs[1].name), grpc.StatusCode.INVALID_ARGUMENT, "duplicate"),
    ],
)
def test_bad_calls_get_their_status_code(
    channel: grpc.Channel, trained: TrainedModel, edit: object, code: grpc.StatusCode, fragment: str
) -> None:
    request = _request(trained.features.head(3), raw=True)
    edit(request)  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as raised:
        _call(channel, "ModelInfer", request, pb.ModelInferResponse)
    assert raised.value.code() == code  # type: ignore[attr-defined]
    assert fragment in raised.value.details()  # type: ignore[attr-defined]


def test_oversized_message_is_resource_exhausted_and_the_server_goes_on(
    server: Server, channel: grpc.Channel, trained: TrainedModel
) -> None:
    """gRPC itself refuses the oversized message; the next call on the same channel is answered and counted."""
    request = pb.ModelInferRequest(model_name=MODEL_NAME, raw_input_contents=[b"\0" * (TEST_MAX_BODY_BYTES + 1)])
    with pytest.raises(grpc.RpcError) as raised:
        _call(channel, "ModelInfer", request, pb.ModelInferResponse)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    answer = _call(channel, "ModelInfer", _request(trained.features.head(2), raw=True), pb.ModelInferResponse)
    assert answer.model_name == MODEL_NAME
    metrics = server.session.get(f"{server.url}/metrics", timeout=10).text
    assert f'kubeforge_requests_total{{code="200",contract="grpc",model="{MODEL_NAME}"}}' in metrics


def test_overload_is_unavailable_and_the_server_recovers(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    # the first batch waits 500 ms for company, so concurrent calls pile up behind it
    options = ServerOptions(batching=BatchingOptions(max_batch_size=1000, max_wait_ms=500, max_queue=3))
    request = _request(trained.features.head(1), raw=True)
    app = create_app({MODEL_NAME: model}, options=options)
    with running_endpoints(app) as endpoints, grpc.insecure_channel(endpoints.grpc) as channel:

        def infer(_: int) -> grpc.StatusCode:
            try:
                _call(channel, "ModelInfer", request, pb.ModelInferResponse)
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[attr-defined, no-any-return]
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(infer, range(12)))
        assert codes.count(grpc.StatusCode.OK) == 3 and codes.count(grpc.StatusCode.UNAVAILABLE) == 9, codes
        assert infer(0) == grpc.StatusCode.OK


def test_a_port_in_use_is_a_clear_error(trained: TrainedModel) -> None:
    app = create_app({MODEL_NAME: load_model(trained.directory, name=MODEL_NAME)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServingError, match=f"--grpc-port: cannot listen on 127.0.0.1:{port}"):
            asyncio.run(start_grpc_server(app, "127.0.0.1", port))


def test_checked_in_messages_match_the_published_proto(tmp_path: Path) -> None:
    """The generated module describes exactly grpc_predict_v2.proto (whatever grpcio-tools version runs)."""
    proto = Path("kubeforge/serving/oip/grpc_predict_v2.proto")
    out = tmp_path / "descriptor.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'src'}", f"--descriptor_set_out={out}", str(proto)],
        check=True,
        cwd=ROOT / "src",
    )
    published = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    _drop_json_names(published.message_type)  # protoc adds them to descriptor sets, never to Python modules
    checked_in = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(checked_in)
    assert checked_in == published
    assert [method.name for method in published.service[0].method] == [
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
    ]  # fmt: skip


def _drop_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for message in messages:
        for entry in message.field:
            entry.ClearField("json_name")
        _drop_json_names(message.nested_type)
