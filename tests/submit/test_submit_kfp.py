"""`kubeforge submit --kfp` against a loopback server speaking the KFP v2beta1 REST API.

No KFP API server can run here; kfp_api_server stands in for one on 127.0.0.1, so the real
kfp.Client and kfp_server_api code sends every request. The console entry point runs in
process, so exit codes and the one-line error messages are what a user sees.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kfp_api_server import KfpState, running_kfp_api

from kubeforge.cli import main

TOKEN = "s3cret-token"
MODEL = ["--param", "data_uri=gs://bucket/rows.parquet", "--param", "model_uri=gs://bucket/model"]


@pytest.fixture
def kfp_state() -> KfpState:
    return KfpState(token=TOKEN)


@pytest.fixture
def kfp_host(kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("KUBEFORGE_KFP_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json
    with running_kfp_api(kfp_state) as host:
        yield host


def _submit(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["kubeforge", "submit", *args])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_run_is_filed_under_the_experiment_and_followed_to_success(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["batch_prediction", "--kfp", kfp_host, "--experiment", "nightly", *MODEL, "--param", "keep_columns=id"]
    code = _submit(monkeypatch, *args, "--no-caching", "--wait", "--poll-interval", "0.01")

    out = capsys.readouterr().out
    assert code == 0, out
    [experiment] = kfp_state.experiments.values()
    [run] = kfp_state.runs.values()
    assert experiment["display_name"] == "nightly"
    assert run["experiment_id"] == experiment["experiment_id"]
    assert run["display_name"] == "batch-prediction"
    assert run["runtime_config"]["parameters"] == {
        "data_uri": "gs://bucket/rows.parquet",
        "model_uri": "gs://bucket/model",
        "keep_columns": "id",
    }
    assert run["pipeline_spec"]["pipelineInfo"]["name"] == "batch-prediction"
    caching = {
        task["cachingOptions"].get("enableCache", False)
        for task in run["pipeline_spec"]["root"]["dag"]["tasks"].values()
    }
    assert caching == {False}
    assert "batch-predict=RUNNING" in out
    assert f"run {run['run_id']} SUCCEEDED" in out.splitlines()[-1]


def test_existing_experiment_is_reused(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        assert _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL) == 0
    assert len(kfp_state.experiments) == 1
    assert len(kfp_state.runs) == 2
    assert "run-2" in capsys.readouterr().out


def test_failed_run_exits_non_zero_naming_the_task(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_state.run_outcome, kfp_state.failing_task = "FAILED", "batch-predict"
    code = _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL, "--wait", "--poll-interval", "0.01")
    assert code == 9
    assert "the run ended FAILED; failed task(s): batch-predict" in capsys.readouterr().err


def test_schedule_creates_a_recurring_run(kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL, "--schedule", "0 3 * * *") == 0
    [recurring] = kfp_state.recurring_runs.values()
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["mode"] == "ENABLE"
    assert kfp_state.runs == {}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BROKEN_PIPELINE = """
from kfp import dsl

@dsl.component
def number() -> int:
    return 1

@dsl.component
def text(value: str) -> None:
    print(value)

@dsl.pipeline(name="broken")
def broken() -> None:
    text(value=number().outputs["nothing"])
"""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["batch_prediction", *MODEL, "--param", "epochs=3"], 2, "--param epochs: the pipeline declares no such"),
        (["batch_prediction", "--param", "model_uri=gs://b/m"], 2, "required parameter(s) data_uri not given"),
        (["broken.py", "--wait"], 2, "broken.py failed to import"),
        (["batch_prediction", *MODEL, "--schedule", "daily"], 2, "--schedule 'daily': expected a cron expression"),
        (["batch_prediction", *MODEL, "--schedule", "0 3 * * *", "--wait"], 2, "--wait follows one run"),
    ],
)
def test_bad_input_is_refused_before_the_server_is_contacted(
    args: list[str],
    code: int,
    message: str,
    kfp_host: str,
    kfp_state: KfpState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.py").write_text(BROKEN_PIPELINE)
    monkeypatch.chdir(tmp_path)
    assert _submit(monkeypatch, *args, "--kfp", kfp_host) == code
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert kfp_state.requests == []


def test_missing_or_wrong_token_is_named(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBEFORGE_KFP_TOKEN")
    assert _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL) == 8
    assert "refused the credentials (HTTP 401): set $KUBEFORGE_KFP_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("OTHER_TOKEN", "wrong")
    assert _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL, "--token-env", "OTHER_TOKEN") == 8
    assert "the token in $OTHER_TOKEN was not accepted" in capsys.readouterr().err
    assert kfp_state.experiments == {} and kfp_state.runs == {}


def test_unreachable_host_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    assert _submit(monkeypatch, "batch_prediction", "--kfp", host, *MODEL) == 8
    assert f"cannot reach KFP at {host}" in capsys.readouterr().err


def test_refused_run_leaves_no_experiment_behind(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kfp_state.reject_runs = True
    assert _submit(monkeypatch, "batch_prediction", "--kfp", kfp_host, *MODEL, "--experiment", "fresh") == 8
    assert "refused the run of batch-prediction: runs are refused by this server" in capsys.readouterr().err
    assert kfp_state.experiments == {} and kfp_state.runs == {}
    assert "DELETE /apis/v2beta1/experiments/experiment-1" in kfp_state.requests


def test_list_parameters_travel_as_json(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    space = '[{"learning_rate": 0.01, "hidden_layers": "16"}]'
    args = [
        "hyperparameter_sweep",
        "--kfp",
        kfp_host,
        "--param",
        "data_uri=gs://b/d.csv",
        "--param",
        f"search_space={space}",
    ]
    assert _submit(monkeypatch, *args) == 0
    [run] = kfp_state.runs.values()
    assert run["runtime_config"]["parameters"]["search_space"] == [{"learning_rate": 0.01, "hidden_layers": "16"}]
    assert _submit(monkeypatch, *args[:-1], "search_space={not json") == 2
    assert "--param search_space: '{not json' is not a valid List" in capsys.readouterr().err


def test_endpoint_recorded_by_infra_up_is_used(
    kfp_host: str, kfp_state: KfpState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After `kubeforge infra up` records the cluster, `kubeforge submit` needs no --kfp."""
    from kubeforge.infra.config import config_path

    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    config_path().parent.mkdir(parents=True)
    config_path().write_text(json.dumps({"kfp_endpoint": kfp_host, "artifact_root": "s3://artifacts/root"}))

    assert _submit(monkeypatch, "batch_prediction", *MODEL) == 0
    [run] = kfp_state.runs.values()
    assert run["display_name"] == "batch-prediction"


def test_no_target_and_no_record_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "empty"))
    assert _submit(monkeypatch, "batch_prediction", *MODEL) == 2
    assert "run `kubeforge infra up` first" in capsys.readouterr().err
