"""The training component's `backend="queue"`: a real scheduler server (REST API + dispatcher with
its local backend) runs the training job under torchrun; the component submits and waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scheduler_server import ADMIN_TOKEN, training_scheduler

from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, train_model
from kubeforge.errors import InputError
from kubeforge.launch.base import JobHandle, JobState
from kubeforge.launch.queue import QueueBackend
from kubeforge.scheduler_client import SchedulerClient


@pytest.fixture
def scheduler_url(tmp_path: Path) -> Iterator[str]:
    with training_scheduler(tmp_path) as url:
        yield url


def test_training_through_the_queue_trains_and_publishes_the_model(
    scheduler_url: str, prepared: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SchedulerClient(scheduler_url, ADMIN_TOKEN) as admin:
        token = admin.create_token("ml-team")
    monkeypatch.setenv("KUBEFORGE_SCHEDULER_URL", scheduler_url)
    monkeypatch.setenv("KUBEFORGE_TOKEN", token)
    inputs = TrainInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    handle = tmp_path / "handle.json"
    params = TrainParams(
        backend="queue", workers=2, epochs=2, cpu="1", memory="1Gi", backend_options=json.dumps({"queue": "train"})
    )
    result = train_model(inputs, str(tmp_path / "model"), params, handle_path=str(handle))
    assert result.summary["world_size"] == 2 and result.model_metadata["backend"] == "queue"
    assert 0.0 <= result.final_metrics["val_accuracy"] <= 1.0
    assert (tmp_path / "model" / "kubeforge_model.json").is_file()
    recorded = json.loads(handle.read_text())
    with SchedulerClient(scheduler_url, token) as team:
        job = team.job(int(recorded["id"]))
    assert recorded["backend"] == "queue" and job["state"] == "succeeded"
    assert job["spec"]["workers"] == 2 and job["spec"]["resources"]["memory"] == "1024Mi"


def test_queue_backend_names_what_it_lacks(prepared: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEFORGE_SCHEDULER_URL", raising=False)
    monkeypatch.delenv("KUBEFORGE_TOKEN", raising=False)
    inputs = TrainInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    with pytest.raises(InputError, match=r"queue backend needs url .*token .*queue"):
        train_model(inputs, str(tmp_path / "model"), TrainParams(backend="queue", workers=1))


def test_queue_backend_refuses_a_token_as_a_parameter_and_reads_a_mounted_one(
    scheduler_url: str, prepared: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = TrainInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    leaked = json.dumps({"queue": "train", "url": "http://127.0.0.1:1", "token": "team-token-in-the-pipeline"})
    with pytest.raises(InputError, match=r"backend_options\.token: a token is not accepted as a pipeline parameter"):
        train_model(inputs, str(tmp_path / "model"), TrainParams(backend="queue", workers=1, backend_options=leaked))
    with SchedulerClient(scheduler_url, ADMIN_TOKEN) as admin:
        token = admin.create_token("mounted")
    with SchedulerClient(scheduler_url, token) as team:
        job_id = team.submit({"queue": "train", "command": ["true"]})
    monkeypatch.delenv("KUBEFORGE_TOKEN", raising=False)
    (tmp_path / "token").write_text(token + "\n")  # as a Kubernetes secret is mounted
    monkeypatch.setenv("KUBEFORGE_TOKEN_FILE", str(tmp_path / "token"))
    backend = QueueBackend({"queue": "train", "url": scheduler_url})
    state = backend.status(JobHandle("queue", "mounted", str(job_id), {})).state
    assert state.live or state is JobState.SUCCEEDED  # the scheduler's own state (admitted, say), read as it is
