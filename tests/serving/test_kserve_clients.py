"""KServe's own clients (InferenceRESTClient, InferenceGRPCClient) against the server.

kserve needs pandas<3, so it cannot install beside kubeforge: the calls run in the serving bench's
KServe virtualenv (`make bench-serving` creates .bench/kserve-venv) through kserve_clients_probe.py,
and this test compares what they got with the plain JSON path, to the last bit. Skipped, saying
so, where that virtualenv is absent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubeforge.model_format import load_model
from kubeforge.serving.app import create_app

from .conftest import MODEL_NAME, Server, TrainedModel, loopback_session, running_endpoints, v2_request

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
KSERVE_PYTHON = REPO / ".bench" / "kserve-venv" / "bin" / "python"
PROBE = Path(__file__).with_name("kserve_clients_probe.py")
EXPECTED_CALLS = {
    "rest.live",
    "rest.ready",
    "rest.model_ready",
    "rest.error.unknown_model",
    "rest.error.missing_input",
    "grpc.live",
    "grpc.ready",
    "grpc.model_ready",
    "grpc.model_metadata",
    "grpc.server_metadata",
    "grpc.error.unknown_model",
    "grpc.error.missing_input",
}


@pytest.fixture(scope="module")
def served(trained: TrainedModel) -> Iterator[Server]:
    if not KSERVE_PYTHON.is_file():
        pytest.skip(f"{KSERVE_PYTHON.relative_to(REPO)} is absent; `make bench-serving` creates the KServe virtualenv")
    model = load_model(trained.directory, name=MODEL_NAME)
    with running_endpoints(create_app({MODEL_NAME: model})) as endpoints, loopback_session() as session:
        yield Server(url=endpoints.url, model=model, session=session, grpc=endpoints.grpc)


def _json_path(server: Server, rows: pd.DataFrame) -> dict[str, object]:
    response = server.session.post(server.infer_url(), data=json.dumps(v2_request(rows)), timeout=120)
    assert response.status_code == 200, response.text
    outputs = {tensor["name"]: tensor for tensor in response.json()["outputs"]}
    probabilities = np.asarray(outputs["probabilities"]["data"], dtype="<f4").reshape(len(rows), -1)
    return {
        "labels": outputs["predictions"]["data"],
        "probabilities": probabilities.tobytes().hex(),
        "shape": list(probabilities.shape),
    }


def test_kserve_clients_call_every_route_and_predict_like_the_json_path(
    served: Server, trained: TrainedModel, tmp_path: Path
) -> None:
    requests = {
        "small": trained.features.head(24),
        "large": pd.concat([trained.features] * 40, ignore_index=True),  # ~5,700 rows
    }
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps({name: frame.to_dict(orient="list") for name, frame in requests.items()}))
    result = subprocess.run(
        [str(KSERVE_PYTHON), str(PROBE), served.url, served.grpc, MODEL_NAME, str(rows_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    calls = outcome["calls"]
    infer_calls = {
        f"{transport}.{name}"
        for name in requests
        for transport in ("rest.infer.json", "rest.infer.binary", "grpc.infer")
    }
    assert set(calls) == EXPECTED_CALLS | infer_calls
    failed = {name: call for name, call in calls.items() if not call["ok"]}
    assert not failed, failed
    assert calls["rest.error.unknown_model"]["status"] == 404
    assert "'nope' is not served here" in calls["rest.error.unknown_model"]["message"]
    assert calls["rest.error.missing_input"]["status"] == 400
    assert calls["grpc.error.unknown_model"]["status"] == "NOT_FOUND"
    assert calls["grpc.error.missing_input"]["status"] == "INVALID_ARGUMENT"
    assert calls["grpc.model_metadata"]["inputs"] == list(trained.features.columns)
    assert calls["grpc.server_metadata"]["extensions"] == ["binary_tensor_data", "explain"]
    for name, rows in requests.items():
        expected = _json_path(served, rows)
        for transport in ("rest.infer.json", "rest.infer.binary", "grpc.infer"):
            assert outcome["predictions"][f"{transport}.{name}"] == expected, f"{transport}.{name}"
