"""Every component loaded from its checked-in component.yaml, as another team would reuse it.

Each is placed in a small pipeline written only for the test (importers feed it real
artifacts made by the cores) and run through kfp.local, so the YAML itself is what runs.
"""

import functools
import http.server
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kfp import components, dsl
from kfp.dsl import Artifact, Dataset, Model

from kubeforge.catalog import list_components
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.serving.local import list_local_servers, stop_local_server
from kubeforge_dev.catalog_build import repository_root


def _load(key: str) -> Any:
    return components.load_component_from_file(str(repository_root() / "components" / key / "component.yaml"))


def test_catalogue_lists_every_component_folder() -> None:
    keys = [entry.key for entry in list_components()]
    folders = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in repository_root().glob("components/*/*/*.yaml"))
    assert keys == sorted(set(folders))
    assert set(keys) >= {"evaluation/classification", "preprocess/tabular", "serving/deploy", "training/pytorch"}
    assert set(keys) >= {"evaluation/select_best", "inference/batch"}  # pipelines: sweep selection, batch scoring


def test_readme_component_table_lists_every_component() -> None:
    readme = (repository_root() / "README.md").read_text()
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| [`")}
    assert listed == {entry.key for entry in list_components()}


def test_components_load_by_url() -> None:
    """load_component_from_url over real HTTP: a loopback server stands in for the repository host."""
    handler = functools.partial(_QuietHandler, directory=str(repository_root()))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            for entry in list_components():
                loaded = components.load_component_from_url(f"{base}/components/{entry.key}/component.yaml")
                assert loaded.name == entry.metadata["name"].replace("_", "-")
        finally:
            server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _run(pipeline: Callable[..., Any], tmp_path: Path) -> Path:
    return run_pipeline_locally(pipeline, {}, tmp_path / "root").run_dir


def test_preprocess_from_yaml(prepared: Any, tmp_path: Path) -> None:
    preprocess = _load("preprocess/tabular")

    @dsl.pipeline(name="reuse-preprocess")
    def reuse() -> None:
        data = dsl.importer(artifact_uri=str(prepared.csv), artifact_class=Dataset)
        preprocess(data=data.output, label_column="target", validation_fraction=0.2, test_fraction=0.2)

    outputs = _run(reuse, tmp_path) / "preprocess-tabular"
    assert {p.name for p in outputs.iterdir()} >= {"train_data", "validation_data", "test_data", "preprocessor"}
    assert json.loads((outputs / "preprocessor").read_text())["format"] == "kubeforge.preprocessor"


def test_train_from_yaml(prepared: Any, tmp_path: Path) -> None:
    train = _load("training/pytorch")

    @dsl.pipeline(name="reuse-train")
    def reuse() -> None:
        train_data = dsl.importer(artifact_uri=str(prepared.train), artifact_class=Dataset)
        validation = dsl.importer(artifact_uri=str(prepared.validation), artifact_class=Dataset)
        preprocessor = dsl.importer(artifact_uri=str(prepared.preprocessor), artifact_class=Artifact)
        train(
            train_data=train_data.output,
            validation_data=validation.output,
            preprocessor=preprocessor.output,
            workers=1,
            epochs=2,
        )

    model = _run(reuse, tmp_path) / "train-pytorch" / "model"
    assert (model / "kubeforge_model.json").is_file()
    assert (model / "model.pt").is_file()


def test_evaluate_from_yaml(prepared: Any, trained_model: Path, tmp_path: Path) -> None:
    evaluate = _load("evaluation/classification")

    @dsl.pipeline(name="reuse-evaluate")
    def reuse() -> None:
        test_data = dsl.importer(artifact_uri=str(prepared.test), artifact_class=Dataset)
        model = dsl.importer(artifact_uri=str(trained_model), artifact_class=Model)
        evaluate(test_data=test_data.output, model=model.output, champion_model=model.output, thresholds="{}")

    plots = _run(reuse, tmp_path) / "evaluate-classifier" / "plots"
    report = json.loads((plots / "evaluation.json").read_text())
    assert report["passed"] is True
    assert report["champion_metrics"]["accuracy"] == report["metrics"]["accuracy"]
    assert (plots / "roc_curve.png").read_bytes().startswith(b"\x89PNG")


def test_deploy_from_yaml(trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    deploy = _load("serving/deploy")

    @dsl.pipeline(name="reuse-deploy")
    def reuse() -> None:
        model = dsl.importer(artifact_uri=str(trained_model), artifact_class=Model)
        deploy(model=model.output, model_name="reused")

    try:
        _run(reuse, tmp_path)
        [server] = list_local_servers(tmp_path / "home")
        assert server.name == "reused"
        assert Path(server.model_dir) == trained_model
    finally:
        stop_local_server("reused", tmp_path / "home")
