"""champion_challenger with its champion in the MLflow registry: fetched by alias, a winner promoted by moving it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from prepared_data import PreparedData, train_model

from kubeforge.components.registry.mlflow import core as registry
from kubeforge.components.registry.mlflow_fetch import core as fetch
from kubeforge.errors import InputError
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import MANIFEST
from kubeforge.pipelines.champion_challenger.pipeline import champion_challenger
from kubeforge.serving.local import list_local_servers, stop_local_server

pytestmark = pytest.mark.tracking  # a real `mlflow server`: `make test-tracking`


@pytest.fixture(scope="module")
def weak_champion(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real but poor model: one hidden unit, one epoch at a tiny learning rate."""
    return train_model(prepared, tmp_path_factory.mktemp("weak"), hidden_layers=[1], epochs=1, learning_rate=1e-5)


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def test_a_better_challenger_takes_the_champion_alias(
    mlflow_server: str, breast_cancer_csv: Path, weak_champion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    registry.register_model(mlflow_server, str(weak_champion), weak_champion.as_uri(), "cc-win", aliases="champion")
    params = {"data_uri": str(breast_cancer_csv), "registered_model_name": "cc-win", "tracking_uri": mlflow_server}
    params |= {"model_name": "cc", "workers": 1, "epochs": 8, "learning_rate": 0.01}
    try:
        run = run_pipeline_locally(champion_challenger, params, tmp_path / "root")
        [server] = list_local_servers(tmp_path / "home")
    finally:
        stop_local_server("cc", tmp_path / "home")

    client = MlflowClient(tracking_uri=mlflow_server)
    assert _aliases(client, "cc-win") == {"champion": "2", "challenger": "2", "previous_champion": "1"}
    versions = client.search_model_versions("name = 'cc-win'")
    assert len(versions) == 2
    trained = run.task_dir("train-pytorch") / "model"
    promoted = client.get_model_version("cc-win", "2")
    assert Path(promoted.tags["kubeforge.model_uri"]).resolve() == trained.resolve()
    history = client.get_metric_history(promoted.run_id, "val_loss")  # the training run was tracked
    assert sorted(point.step for point in history) == list(range(1, 9))
    challenger = json.loads((run.task_dir("evaluate-classifier-3") / "plots" / "evaluation.json").read_text())
    champion = json.loads((run.task_dir("evaluate-classifier-4") / "plots" / "evaluation.json").read_text())
    assert challenger["passed"] is True and champion["passed"] is False
    assert challenger["metrics"]["roc_auc"] > challenger["champion_metrics"]["roc_auc"]
    assert (run.task_dir("fetch-model-mlflow") / "model" / MANIFEST).is_file()
    assert not run.task_dir("evaluate-classifier").exists()  # the URI branch did not run
    assert Path(server.model_dir) == trained

    # A retried promotion (same Model artifact) finds its version and flips nothing again.
    again = registry.register_model(
        mlflow_server, str(trained), promoted.tags["kubeforge.model_uri"], "cc-win",
        aliases="champion", previous_alias="previous_champion",
    )  # fmt: skip
    assert again.version == "2"
    assert _aliases(client, "cc-win") == {"champion": "2", "challenger": "2", "previous_champion": "1"}
    assert len(client.search_model_versions("name = 'cc-win'")) == 2


def test_a_promotion_cut_short_completes_on_retry(mlflow_server: str, weak_champion: Path, tmp_path: Path) -> None:
    registry.register_model(mlflow_server, str(weak_champion), "file:///cut/1", "cc-cut", aliases="champion")
    registry.register_model(mlflow_server, str(weak_champion), "file:///cut/2", "cc-cut", aliases="challenger")
    client = MlflowClient(tracking_uri=mlflow_server)
    client.set_registered_model_alias("cc-cut", "previous_champion", "1")  # the first step of a promotion, then a kill
    done = registry.register_model(
        mlflow_server,
        str(weak_champion),
        "file:///cut/2",
        "cc-cut",
        aliases="champion",
        previous_alias="previous_champion",
    )
    assert done.version == "2"
    assert _aliases(client, "cc-cut") == {"champion": "2", "challenger": "2", "previous_champion": "1"}


def test_fetch_downloads_the_alias_version_and_names_a_missing_alias(
    mlflow_server: str, weak_champion: Path, tmp_path: Path
) -> None:
    registry.register_model(mlflow_server, str(weak_champion), "file:///fetch/1", "cc-fetch", aliases="champion")
    fetched = fetch.fetch_model(mlflow_server, "cc-fetch", "champion", tmp_path / "champion")
    assert (fetched.version, fetched.alias) == ("1", "champion")
    files = sorted(path.name for path in (tmp_path / "champion").iterdir())
    assert files == sorted(path.name for path in weak_champion.iterdir())
    assert (tmp_path / "champion" / "model.pt").read_bytes() == (weak_champion / "model.pt").read_bytes()
    with pytest.raises(InputError, match=r"alias: registered model 'cc-fetch' has no alias 'gold'"):
        fetch.fetch_model(mlflow_server, "cc-fetch", "gold", tmp_path / "gold")
    assert not (tmp_path / "gold").exists()  # nothing half-written
    for bad, message in (("latest", "'latest' is not a usable alias"), ("champion", "'champion' must be one alias")):
        with pytest.raises(InputError, match=f"previous_alias: {message}"):
            registry.register_model(
                mlflow_server, str(weak_champion), "file:///f/1", "cc-fetch", aliases="champion", previous_alias=bad
            )
