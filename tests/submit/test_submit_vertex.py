"""`kubeforge submit --vertex` against a loopback server speaking the Vertex AI REST API.

No Vertex AI can run here; vertex_api_server stands in for it on 127.0.0.1 (`--api-endpoint`
makes aiplatform use REST there), so the real aiplatform.PipelineJob and google-auth code runs:
a service-account key file's credentials sign their own JWTs, which the server verifies against
the key. PipelineJob's check of the output bucket talks to gcp-storage-emulator.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from vertex_api_server import VertexState, running_vertex_api

from kubeforge.cli import main

ACCOUNT = "pipelines@kubeforge-test.iam.gserviceaccount.com"
# Each submission names a bucket that does not exist yet: PipelineJob creates it on the emulator
# (with --service-account that needs no Resource Manager lookup, which cannot be reached from here).
ROOT = "gs://kubeforge-pipelines-{}/root"
MODEL = ["--param", "data_uri=gs://kubeforge-test/rows.parquet", "--param", "model_uri=gs://kubeforge-test/model"]


@pytest.fixture
def vertex_state() -> VertexState:
    return VertexState()


@pytest.fixture
def vertex_endpoint(
    vertex_state: VertexState, gcs_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The fake service, and GOOGLE_APPLICATION_CREDENTIALS naming a real service-account key for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    vertex_state.service_account_keys[ACCOUNT] = public_pem.decode()
    with running_vertex_api(vertex_state) as endpoint:
        key_file = tmp_path / "key.json"
        key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "kubeforge-test",
                    "private_key_id": "key-1",
                    "private_key": private_pem.decode(),
                    "client_email": ACCOUNT,
                    "client_id": "1",
                    "token_uri": f"{endpoint}/token",
                }
            )
        )
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield endpoint


def _submit(monkeypatch: pytest.MonkeyPatch, endpoint: str, *args: str) -> int:
    target = ["--vertex", "--project", "kubeforge-test", "--region", "europe-west4", "--api-endpoint", endpoint]
    monkeypatch.setattr(sys, "argv", ["kubeforge", "submit", *args, *target])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_pipeline_job_carries_every_setting_and_is_followed(
    vertex_endpoint: str, vertex_state: VertexState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ROOT.format(1)
    settings = ["--pipeline-root", root, "--service-account", ACCOUNT, "--no-caching"]
    settings += ["--label", "team=ml", "--label", "cost-center=42", "--network", "projects/7/global/networks/vpc"]
    code = _submit(
        monkeypatch, vertex_endpoint, "batch_prediction", *MODEL, *settings, "--wait", "--poll-interval", "0.01"
    )

    out = capsys.readouterr().out
    assert code == 0, out
    [(name, job)] = vertex_state.jobs.items()
    assert name.startswith("projects/kubeforge-test/locations/europe-west4/pipelineJobs/batch-prediction-")
    assert job["displayName"] == "batch-prediction"
    assert job["serviceAccount"] == ACCOUNT
    assert job["network"] == "projects/7/global/networks/vpc"
    assert job["labels"] == {"team": "ml", "cost-center": "42"}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == root
    assert job["runtimeConfig"]["parameterValues"] == {
        "data_uri": "gs://kubeforge-test/rows.parquet",
        "model_uri": "gs://kubeforge-test/model",
    }
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"].values()
    assert {task["cachingOptions"].get("enableCache", False) for task in tasks} == {False}
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert "PIPELINE_STATE_RUNNING" in progress[0] and "=RUNNING" in progress[0]
    assert progress[-1].endswith("batch-predict=SUCCEEDED  importer=SUCCEEDED  importer-2=SUCCEEDED")
    assert out.splitlines()[-1] == f"pipeline job {name} PIPELINE_STATE_SUCCEEDED"


def test_failed_job_exits_non_zero(
    vertex_endpoint: str, vertex_state: VertexState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vertex_state.failing_task = "batch-predict"
    args = ["batch_prediction", *MODEL, "--pipeline-root", ROOT.format(2), "--service-account", ACCOUNT]
    args += ["--wait", "--poll-interval", "0.01"]
    assert _submit(monkeypatch, vertex_endpoint, *args) == 9
    assert (
        "the run ended PIPELINE_STATE_FAILED: task batch-predict failed; failed task(s): batch-predict"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--pipeline-root", "/tmp/root"], 2, "--pipeline-root '/tmp/root': Vertex AI needs a gs://"),
        (["--pipeline-root", "gs://b/r", "--label", "Team=ML"], 2, "--label 'Team=ML': keys and values"),
        (["--pipeline-root", "gs://b/r", "--param", "epochs=3"], 2, "--param epochs: the pipeline declares no such"),
        (["--pipeline-root", "gs://b/r", "--schedule", "0 3 * * *"], 2, "--schedule is for --kfp"),
    ],
)
def test_bad_settings_create_nothing(
    args: list[str],
    code: int,
    message: str,
    vertex_endpoint: str,
    vertex_state: VertexState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _submit(monkeypatch, vertex_endpoint, "batch_prediction", *MODEL, *args) == code
    assert message in capsys.readouterr().err
    assert vertex_state.requests == []


def test_missing_credentials_are_named(
    vertex_endpoint: str,
    vertex_state: VertexState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    assert _submit(monkeypatch, vertex_endpoint, "batch_prediction", *MODEL, "--pipeline-root", "gs://b/r") == 8
    err = capsys.readouterr().err
    assert "no Google Cloud credentials" in err and "GOOGLE_APPLICATION_CREDENTIALS" in err
    assert vertex_state.requests == []
