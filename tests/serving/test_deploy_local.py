"""The `local` deploy target: a detached model server process, its registry and its lifecycle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kubeforge.components.serving.deploy.core import DeployResult, deploy
from kubeforge.errors import InputError, ServingError
from kubeforge.model_format import load_model, script_module, write_model_dir
from kubeforge.serving.local import REGISTRY, list_local_servers, stop_local_server
from kubeforge.training.models import TabularMLP

from .conftest import LABEL, TrainedModel, v2_request


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state directory (also as $KUBEFORGE_HOME); every server left in it is stopped afterwards."""
    state = tmp_path / "kubeforge-home"
    monkeypatch.setenv("KUBEFORGE_HOME", str(state))
    yield state
    registry = state / REGISTRY
    if registry.exists():
        for name in json.loads(registry.read_text()):
            stop_local_server(name, state_dir=state)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # loopback traffic never goes through a proxy from the environment
        yield http


def _registry(state: Path) -> dict[str, dict[str, object]]:
    path = state / REGISTRY
    return json.loads(path.read_text()) if path.exists() else {}


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _deploy_in_subprocess(model_dir: Path, name: str) -> dict[str, str]:
    """Deploy from a child whose stdout is a pipe read to EOF: it only ends if the server let go of it."""
    code = textwrap.dedent(
        f"""
        import dataclasses, json
        from kubeforge.components.serving.deploy.core import deploy
        result = deploy({str(model_dir)!r}, target="local", model_name={name!r})
        print(json.dumps(dataclasses.asdict(result)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_deploy_local_serves_reattaches_and_stops(trained: TrainedModel, home: Path, session: requests.Session) -> None:
    first = _deploy_in_subprocess(trained.directory, "cancer-local")
    assert (first["target"], first["status"], first["model_name"]) == ("local", "started", "cancer-local")
    entry = _registry(home)["cancer-local"]
    pid = int(entry["pid"])  # type: ignore[call-overload]
    assert _running(pid)
    assert first["endpoint"] == entry["url"] and first["infer_url"] == f"{entry['url']}/v2/models/cancer-local/infer"
    assert Path(str(entry["log_path"])).is_file()

    assert session.get(f"{first['endpoint']}/v2/health/ready", timeout=10).status_code == 200
    rows = trained.features.head(20)
    response = session.post(first["infer_url"], json=v2_request(rows), timeout=30)
    assert response.status_code == 200, response.text
    predictions = next(t for t in response.json()["outputs"] if t["name"] == "predictions")["data"]
    assert predictions == load_model(trained.directory).predict_frame(rows).labels
    accuracy = sum(p == y for p, y in zip(predictions, trained.test[LABEL].head(20), strict=True)) / 20
    assert accuracy >= 0.9

    again = deploy(str(trained.directory), target="local", model_name="cancer-local")  # state dir from $KUBEFORGE_HOME
    assert again == DeployResult(first["endpoint"], "local", "reattached", "cancer-local", first["infer_url"])
    assert int(_registry(home)["cancer-local"]["pid"]) == pid  # type: ignore[call-overload]
    assert [server.pid for server in list_local_servers()] == [pid]

    assert stop_local_server("cancer-local") is True
    assert not _running(pid)
    assert _registry(home) == {}
    assert list_local_servers() == []
    assert stop_local_server("cancer-local") is False
    with pytest.raises(requests.ConnectionError):
        session.get(f"{first['endpoint']}/v2/health/live", timeout=5)


def test_redeploy_of_another_model_replaces_the_server(trained: TrainedModel, tmp_path: Path, home: Path) -> None:
    copy = shutil.copytree(trained.directory, tmp_path / "copy")
    deploy(str(trained.directory), target="local", model_name="swap", state_dir=str(home))
    old_pid = int(_registry(home)["swap"]["pid"])  # type: ignore[call-overload]
    second = deploy(str(copy), target="local", model_name="swap", state_dir=str(home))
    assert second.status == "started"
    entry = _registry(home)["swap"]
    assert entry["model_dir"] == str(copy.resolve())
    assert int(entry["pid"]) != old_pid and not _running(old_pid)  # type: ignore[call-overload]

    # a server that died on its own is dropped from the registry
    os.kill(int(entry["pid"]), 9)  # type: ignore[call-overload]
    deadline = time.monotonic() + 10
    while list_local_servers(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list_local_servers(home) == []
    assert _registry(home) == {}


def test_bad_model_dir_fails_fast_with_the_logged_reason(tmp_path: Path, home: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    started = time.monotonic()
    with pytest.raises(ServingError) as raised:
        deploy(str(empty), target="local", model_name="broken", state_dir=str(home))
    assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "exited with code" in message
    assert "kubeforge_model.json is missing" in message  # the server's own reason, from its log
    assert _registry(home) == {}


def test_model_that_cannot_predict_fails_at_warm_up(trained: TrainedModel, tmp_path: Path, home: Path) -> None:
    broken = shutil.copytree(trained.directory, tmp_path / "mismatched")
    preprocessor = load_model(trained.directory).preprocessor
    write_model_dir(broken, script_module(TabularMLP(3, 2)), preprocessor, [], training={})
    with pytest.raises(ServingError) as raised:
        deploy(str(broken), target="local", model_name="mismatched", state_dir=str(home))
    assert "warm-up prediction of model 'mismatched' failed: RuntimeError: mat1 and mat2 shapes" in str(raised.value)
    assert _registry(home) == {}


def test_unknown_target_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="target: ") as raised:
        deploy(str(tmp_path), target="heroku", model_name="m", state_dir=str(tmp_path))
    assert "'heroku' is not a deploy target; valid targets are local, kserve, vertex, sagemaker" in str(raised.value)
    assert not (tmp_path / REGISTRY).exists()


def test_invalid_model_name_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model_name: 'bad/name' is not a valid model name"):
        deploy(str(tmp_path), target="local", model_name="bad/name", state_dir=str(tmp_path))
