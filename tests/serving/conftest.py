"""A real model trained once per session on scikit-learn's breast cancer data, plus a served copy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from kubeforge.model_format import LoadedModel, load_model, script_module, write_model_dir
from kubeforge.preprocessor import PreprocessOptions, fit_preprocessor
from kubeforge.serving.app import ModelServer, create_app
from kubeforge.tabular import infer_schema
from kubeforge.training.models import TabularMLP

LABEL = "target"
CATEGORICAL = "size_band"
MODEL_NAME = "cancer"
FLAKY_NAME = "flaky"
TEST_MAX_BODY_BYTES = 256 * 1024


@dataclass
class TrainedModel:
    directory: Path
    test: pd.DataFrame  # held-out raw rows, label included

    @property
    def features(self) -> pd.DataFrame:
        return self.test.drop(columns=[LABEL])


@dataclass
class Server:
    url: str
    model: LoadedModel
    session: requests.Session
    grpc: str = ""  # host:port of the gRPC service

    def infer_url(self, name: str = MODEL_NAME) -> str:
        return f"{self.url}/v2/models/{name}/infer"


def _dataset() -> pd.DataFrame:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    radius = frame["mean radius"]
    low, high = radius.quantile(1 / 3), radius.quantile(2 / 3)
    frame[CATEGORICAL] = np.where(radius <= low, "low", np.where(radius <= high, "mid", "high"))
    # the class labels are strings so the predictions tensor is BYTES
    frame[LABEL] = frame[LABEL].map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    frame = _dataset()
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[LABEL])
    preprocessor = fit_preprocessor(train, infer_schema(frame, LABEL), "classification", PreprocessOptions())
    torch.manual_seed(0)
    features = torch.tensor(preprocessor.transform(train))
    targets = torch.tensor(preprocessor.encode_labels(train[LABEL]))
    model = TabularMLP(features.shape[1], len(preprocessor.classes or []), hidden=(32, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history: list[dict[str, float]] = []
    for step in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(features), targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if step % 100 == 99:
            history.append({"epoch": step // 100 + 1, "train_loss": loss.item()})
    directory = tmp_path_factory.mktemp("model") / MODEL_NAME
    scripted = script_module(model)
    write_model_dir(directory, scripted, preprocessor, history, training={"steps": 300, "optimizer": "adam"})
    return TrainedModel(directory=directory, test=test.reset_index(drop=True))


class _FailsOnBatches(torch.nn.Module):
    """A network with a genuine bug: it answers one row (the warm-up) but fails on batches."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] > 1:
            raise RuntimeError("simulated bug in the network")
        return torch.zeros(features.shape[0], 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Endpoints:
    url: str  # REST
    grpc: str  # host:port of inference.GRPCInferenceService


@contextmanager
def running(app: ModelServer) -> Iterator[str]:
    """The real ASGI app under uvicorn in a background thread on a free loopback port; yields its URL."""
    with running_endpoints(app) as endpoints:
        yield endpoints.url


@contextmanager
def running_endpoints(app: ModelServer) -> Iterator[Endpoints]:
    """The real ASGI app under uvicorn, with gRPC on the same event loop, in a background thread on free ports."""
    import uvicorn

    from kubeforge.serving.server import CombinedServer

    port, grpc_port = free_port(), free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = CombinedServer(config, app, "127.0.0.1", grpc_port)
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve()), name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while uv.grpc_bound is None:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn and gRPC did not start")
        time.sleep(0.02)
    try:
        yield Endpoints(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
    finally:
        uv.should_exit = True
        thread.join(timeout=15)


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never route loopback traffic through a proxy from the environment
    return session


@pytest.fixture(scope="session")
def server(trained: TrainedModel) -> Iterator[Server]:
    """The real ASGI app under uvicorn in a background thread, on a free loopback port."""
    model = load_model(trained.directory, name=MODEL_NAME)
    broken = script_module(_FailsOnBatches())
    flaky = replace(model, name=FLAKY_NAME, module=broken)
    app = create_app({MODEL_NAME: model, FLAKY_NAME: flaky}, max_body_bytes=TEST_MAX_BODY_BYTES, max_workers=2)
    with running_endpoints(app) as endpoints, loopback_session() as session:
        yield Server(url=endpoints.url, model=model, session=session, grpc=endpoints.grpc)


def v2_request(rows: pd.DataFrame, request_id: str | None = None) -> dict[str, object]:
    """A v2 infer request with one input tensor per column, as KServe's pandas codec builds it."""
    inputs = []
    for column in rows.columns:
        values = rows[column]
        numeric = pd.api.types.is_numeric_dtype(values)
        inputs.append(
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": values.tolist(),
            }
        )
    request: dict[str, object] = {"inputs": inputs}
    if request_id is not None:
        request["id"] = request_id
    return request


@pytest.fixture
def still_serving(server: Server, trained: TrainedModel) -> Iterator[None]:
    """After a failed request the server keeps answering health checks and good requests."""
    yield
    rows = trained.features.head(5)
    assert server.session.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
    response = server.session.post(server.infer_url(), json=v2_request(rows), timeout=30)
    assert response.status_code == 200, response.text
    outputs = {tensor["name"]: tensor for tensor in response.json()["outputs"]}
    assert len(outputs["predictions"]["data"]) == len(rows)
