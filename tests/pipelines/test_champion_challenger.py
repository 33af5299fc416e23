"""champion_challenger: the challenger is deployed only when it beats the champion (kfp.local runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prepared_data import PreparedData, train_model

from kubeforge.local_runner import LocalRun, run_pipeline_locally
from kubeforge.pipelines.champion_challenger.pipeline import champion_challenger
from kubeforge.serving.local import list_local_servers, stop_local_server


@pytest.fixture(scope="module")
def weak_champion(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real but poor model: one hidden unit, one epoch at a tiny learning rate."""
    return train_model(prepared, tmp_path_factory.mktemp("weak"), hidden_layers=[1], epochs=1, learning_rate=1e-5)


def _reviews(run: LocalRun) -> tuple[dict[str, Any], dict[str, Any]]:
    def review(task: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((run.task_dir(task) / "plots" / "evaluation.json").read_text())
        return result

    return review("evaluate-classifier"), review("evaluate-classifier-2")


def test_better_challenger_is_deployed(
    breast_cancer_csv: Path, weak_champion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    params = {"data_uri": str(breast_cancer_csv), "champion_model_uri": str(weak_champion), "model_name": "cc"}
    params |= {"workers": 1, "epochs": 8, "learning_rate": 0.01}
    try:
        run = run_pipeline_locally(champion_challenger, params, tmp_path / "root")
        [server] = list_local_servers(tmp_path / "home")
    finally:
        stop_local_server("cc", tmp_path / "home")

    challenger, champion = _reviews(run)
    assert challenger["passed"] is True and champion["passed"] is False
    assert challenger["metrics"]["roc_auc"] > challenger["champion_metrics"]["roc_auc"]
    assert Path(server.model_dir) == run.task_dir("train-pytorch") / "model"


def test_worse_challenger_keeps_the_champion(
    breast_cancer_csv: Path, trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    params = {"data_uri": str(breast_cancer_csv), "champion_model_uri": str(trained_model), "model_name": "cc"}
    params |= {"workers": 1, "epochs": 1, "learning_rate": 1e-5, "hidden_layers": "1"}

    run = run_pipeline_locally(champion_challenger, params, tmp_path / "root")

    challenger, champion = _reviews(run)
    assert challenger["passed"] is False and champion["passed"] is True
    assert not run.task_dir("deploy-model").exists()
    assert list_local_servers(tmp_path / "home") == []
