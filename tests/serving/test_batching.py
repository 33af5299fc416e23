"""Adaptive batching, overload, graceful shutdown and quantization, over real HTTP on the real model."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import requests

from kubeforge.model_format import Prediction, load_model
from kubeforge.serving.app import ServerOptions, create_app
from kubeforge.serving.batching import INLINE_FORWARD_ROWS, INLINE_FORWARD_S, BatchingOptions, ModelBatcher
from kubeforge.serving.metrics import ServerMetrics
from kubeforge.serving.server import quantize_model

from .conftest import MODEL_NAME, TrainedModel, free_port, loopback_session, running, v2_request


def _metric(text: str, name: str) -> float:
    match = re.search(rf'^{re.escape(name)}{{model="{MODEL_NAME}"}} (\S+)$', text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def _probabilities(body: dict[str, Any]) -> np.ndarray:
    tensor = next(t for t in body["outputs"] if t["name"] == "probabilities")
    return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])


def test_concurrent_clients_share_batches_and_get_their_own_rows(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    options = ServerOptions(batching=BatchingOptions(max_batch_size=64, max_wait_ms=200))
    rows = [trained.features.iloc[[i]] for i in range(24)]
    with running(create_app({MODEL_NAME: model}, options=options)) as url, loopback_session() as session:

        def infer(row: pd.DataFrame) -> dict[str, Any]:
            with loopback_session() as own:
                response = own.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=v2_request(row, "r"), timeout=30)
            assert response.status_code == 200, response.text
            return dict(response.json())

        with ThreadPoolExecutor(max_workers=len(rows)) as pool:
            answers = list(pool.map(infer, rows))
        metrics = session.get(f"{url}/metrics", timeout=10).text
    for row, answer in zip(rows, answers, strict=True):
        np.testing.assert_allclose(_probabilities(answer), model.predict_frame(row).probabilities, rtol=1e-5)
    batches = _metric(metrics, "kubeforge_batch_size_rows_count")
    assert _metric(metrics, "kubeforge_batch_size_rows_sum") == len(rows)
    assert batches < len(rows) / 2, f"{batches} forward passes for {len(rows)} concurrent requests: no batching"


def test_overload_is_503_with_retry_after_and_the_server_recovers(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    # the first batch waits 500 ms for company, so concurrent requests pile up behind it
    options = ServerOptions(batching=BatchingOptions(max_batch_size=1000, max_wait_ms=500, max_queue=3))
    row = trained.features.head(1)
    with running(create_app({MODEL_NAME: model}, options=options)) as url:

        def infer(_: int) -> requests.Response:
            with loopback_session() as own:
                return own.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=v2_request(row), timeout=30)

        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(infer, range(12)))
        codes = sorted(response.status_code for response in responses)
        assert codes.count(200) == 3 and codes.count(503) == 9, codes
        refused = next(response for response in responses if response.status_code == 503)
        assert refused.headers["retry-after"] == "1"
        assert "overloaded" in refused.json()["error"]
        assert infer(0).status_code == 200  # recovered once the queue drained


def test_a_lone_client_is_not_held_for_the_batch_window(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    options = ServerOptions(batching=BatchingOptions(max_wait_ms=3000))
    body = v2_request(trained.features.head(1))
    with running(create_app({MODEL_NAME: model}, options=options)) as url, loopback_session() as session:
        # the first request waits the whole window for company; none comes, so the next ones go at once
        # (each would time out if it were held for the 3 s window)
        assert session.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=30).status_code == 200
        for _ in range(3):
            assert session.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=2).status_code == 200


def test_clients_in_a_closed_loop_are_batched_together_as_soon_as_all_are_back(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    features = model.preprocessor.transform(trained.features.head(64))
    passes: list[int] = []
    counting = SimpleNamespace(
        name=MODEL_NAME, predict_features=lambda rows: passes.append(len(rows)) or model.predict_features(rows)
    )

    async def rounds(clients: int) -> list[Prediction]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = ModelBatcher(
                counting, BatchingOptions(max_batch_size=64, max_wait_ms=3000), ServerMetrics(), executor
            )
            first = [features[i * 64 // clients : (i + 1) * 64 // clients] for i in range(clients)]
            await asyncio.gather(*(batcher.predict(rows) for rows in first))  # 64 rows: goes without waiting
            answers: list[Prediction] = []
            for round_ in range(3):  # one row each: the batch goes as soon as every client is back, not in 3 s
                rows = [features[round_ * clients + i : round_ * clients + i + 1] for i in range(clients)]
                answers += await asyncio.wait_for(asyncio.gather(*(batcher.predict(r) for r in rows)), 2.0)
            await batcher.close()
            return answers

    answers = asyncio.run(rounds(4))
    assert passes == [64, 4, 4, 4]  # each round of the four clients shares one forward pass
    expected = model.predict_features(features[:12])
    assert [answer.labels[0] for answer in answers] == list(expected.labels)


def test_quantized_model_agrees_with_the_float_model(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    quantized = quantize_model(model)
    features = trained.features
    float_labels = model.predict_frame(features).labels
    int8_labels = quantized.predict_frame(features).labels
    agreement = np.mean([a == b for a, b in zip(float_labels, int8_labels, strict=True)])
    assert agreement >= 0.97, agreement
    assert "quantized::linear_dynamic" in str(quantized.module.graph)


def test_sigterm_finishes_requests_in_flight(trained: TrainedModel, tmp_path: Path) -> None:
    """`kubeforge serve` as a process: REST and gRPC calls waiting for a batch when SIGTERM arrives are answered."""
    import tritonclient.grpc as grpcclient

    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-c", "from kubeforge.cli import main; main()", "serve", str(trained.directory)]
    command += ["--name", MODEL_NAME, "--port", str(port), "--max-wait-ms", "1500", "--max-batch-size", "1000"]
    command += ["--grpc-port", str(grpc_port)]
    log = (tmp_path / "server.log").open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with loopback_session() as session:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    if session.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                        with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as probe:
                            if probe.is_server_ready():
                                break
                except (requests.ConnectionError, grpcclient.InferenceServerException):
                    pass
                assert time.monotonic() < deadline, "server not ready"
                time.sleep(0.1)
        results: list[int] = []

        def infer() -> None:
            with loopback_session() as own:
                body = v2_request(trained.features.head(2))
                results.append(own.post(f"{url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=30).status_code)

        def infer_grpc() -> None:
            rows = trained.features.head(2)
            inputs = []
            for column in rows.columns:
                numeric = pd.api.types.is_numeric_dtype(rows[column])
                tensor = grpcclient.InferInput(column, [2], "FP64" if numeric else "BYTES")
                tensor.set_data_from_numpy(rows[column].to_numpy(dtype=np.float64 if numeric else object))
                inputs.append(tensor)
            with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
                answer = client.infer(MODEL_NAME, inputs, client_timeout=30)
            results.append(200 if len(answer.as_numpy("predictions")) == 2 else 0)

        threads = [threading.Thread(target=infer) for _ in range(4)] + [
            threading.Thread(target=infer_grpc) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the requests now wait for their batch
        proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert results == [200] * 6
        # uvicorn re-raises the signal it caught once the graceful shutdown is complete
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_large_passes_leave_the_event_loop_until_measured_short(trained: TrainedModel) -> None:
    model = load_model(trained.directory, name=MODEL_NAME)
    features = model.preprocessor.transform(trained.features.sample(1000, replace=True, random_state=0))
    threads: list[str] = []
    slow = SimpleNamespace(name=MODEL_NAME, predict_features=lambda rows: _slow_predict(model, rows, threads))

    async def three_passes(batcher_model: Any) -> list[Prediction]:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer-test") as executor:
            batcher = ModelBatcher(batcher_model, BatchingOptions(), ServerMetrics(), executor)
            answers = [await batcher.predict(features) for _ in range(3)]
            await batcher.close()
            return answers

    answers = asyncio.run(three_passes(slow))
    assert threads == ["infer-test"] * 3  # each pass took over INLINE_FORWARD_S: never on the event loop
    expected = model.predict_features(features)
    for answer in answers:
        assert answer.labels == expected.labels
        np.testing.assert_array_equal(answer.probabilities, expected.probabilities)

    with ThreadPoolExecutor(max_workers=1) as unused:
        batcher = ModelBatcher(model, BatchingOptions(), ServerMetrics(), unused)
    assert batcher._inline(INLINE_FORWARD_ROWS) and not batcher._inline(1000)  # unmeasured: only small passes
    batcher._learn(1000, INLINE_FORWARD_S / 4)
    assert batcher._inline(4000) and not batcher._inline(4001)
    batcher._learn(1000, INLINE_FORWARD_S * 10)  # slower passes move the estimate towards the thread
    assert not batcher._inline(4000)


def _slow_predict(model: Any, rows: np.ndarray, threads: list[str]) -> Prediction:
    threads.append(threading.current_thread().name.split("_")[0])
    time.sleep(INLINE_FORWARD_S * 2)
    return model.predict_features(rows)  # type: ignore[no-any-return]
