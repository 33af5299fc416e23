"""Reuse: every component.yaml, loaded by path and by file:// URL, composes into a new pipeline;
stale specs, stale READMEs and versions that drift from the package are caught; the scaffolder
makes a component that passes every check."""

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from kubeforge import IMAGE, __version__
from kubeforge.catalog import list_components
from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.catalog.loading import load_component
from kubeforge.errors import InputError
from kubeforge_dev.catalog_build import repository_root, stale_generated
from kubeforge_dev.reuse_checks import version_problems

COMPONENTS = repository_root() / "components"


def _pipeline_from(load: Callable[[str], Any]) -> Any:
    """A pipeline written only for this test, using every catalogue component as loaded by `load`."""
    preprocess, train, evaluate = (
        load("preprocess/tabular"),
        load("training/pytorch"),
        load("evaluation/classification"),
    )
    select, predict, deploy = load("evaluation/select_best"), load("inference/batch"), load("serving/deploy")

    @dsl.pipeline(name="reuse-everything")
    def reuse(data_uri: str) -> None:
        data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset)
        prepared = preprocess(data=data.output, label_column="y")
        with dsl.ParallelFor([0.01, 0.001], parallelism=1) as rate:
            trained = train(
                train_data=prepared.outputs["train_data"],
                validation_data=prepared.outputs["validation_data"],
                preprocessor=prepared.outputs["preprocessor"],
                learning_rate=rate,
            )
        best = select(models=dsl.Collected(trained.outputs["model"]))
        review = evaluate(test_data=prepared.outputs["test_data"], model=best.outputs["best_model"])
        predict(data=prepared.outputs["test_data"], model=best.outputs["best_model"], keep_columns="y")
        with dsl.If(review.outputs["Output"] == True):  # noqa: E712
            deploy(model=best.outputs["best_model"], model_name="reused")

    return reuse


def test_the_catalogue_composes_by_path_and_by_file_url(tmp_path: Path) -> None:
    by_path = _pipeline_from(lambda key: load_component(COMPONENTS / key / "component.yaml"))
    by_url = _pipeline_from(lambda key: load_component((COMPONENTS / key / "component.yaml").as_uri()))
    compile_pipeline(by_path, tmp_path / "by_path.yaml")
    compile_pipeline(by_url, tmp_path / "by_url.yaml")

    assert (tmp_path / "by_path.yaml").read_text() == (tmp_path / "by_url.yaml").read_text()
    spec = yaml.safe_load((tmp_path / "by_path.yaml").read_text())
    images = {
        body["container"]["image"] for body in spec["deploymentSpec"]["executors"].values() if "container" in body
    }
    assert images == {IMAGE}
    assert len(spec["deploymentSpec"]["executors"]) == 7  # six components and the importer


_ARTIFACT_CLASSES = {
    cls.schema_title: cls for cls in (Artifact, Dataset, Model, Metrics, ClassificationMetrics, Markdown)
}
_PARAMETER_VALUES = {"String": "x", "Integer": 1, "Float": 0.5, "Boolean": True, "List": [], "Dict": {}}


def _single_use_pipeline(component: Any) -> Any:
    """A pipeline that feeds every input of `component`: importers for artifacts, values for parameters."""
    spec = component.component_spec

    @dsl.pipeline(name="single-use")
    def single_use() -> None:
        arguments: dict[str, Any] = {}
        for name, spec_input in (spec.inputs or {}).items():
            title = spec_input.type.split("@")[0]
            if title in _ARTIFACT_CLASSES:
                if spec_input.is_artifact_list:
                    with dsl.ParallelFor([1]):
                        item = dsl.importer(artifact_uri=f"gs://bucket/{name}", artifact_class=_ARTIFACT_CLASSES[title])
                    arguments[name] = dsl.Collected(item.output)
                else:
                    arguments[name] = dsl.importer(
                        artifact_uri=f"gs://bucket/{name}", artifact_class=_ARTIFACT_CLASSES[title]
                    ).output
            elif not spec_input.optional:
                arguments[name] = _PARAMETER_VALUES[spec_input.type]
        component(**arguments)

    return single_use


@pytest.mark.parametrize("key", [entry.key for entry in list_components()])
def test_each_component_compiles_alone_by_path_and_by_file_url(key: str, tmp_path: Path) -> None:
    spec_file = COMPONENTS / key / "component.yaml"
    compile_pipeline(_single_use_pipeline(load_component(spec_file)), tmp_path / "by_path.yaml")
    compile_pipeline(_single_use_pipeline(load_component(spec_file.as_uri())), tmp_path / "by_url.yaml")
    assert (tmp_path / "by_path.yaml").read_text() == (tmp_path / "by_url.yaml").read_text()
    spec = yaml.safe_load((tmp_path / "by_path.yaml").read_text())
    images = {
        body["container"]["image"] for body in spec["deploymentSpec"]["executors"].values() if "container" in body
    }
    assert IMAGE in images


def test_loader_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_component(tmp_path / "component.yaml")
    with pytest.raises(InputError, match="cannot be read"):
        load_component((tmp_path / "component.yaml").as_uri())
    with pytest.raises(InputError, match="unsupported scheme 'ftp'"):
        load_component("ftp://host/component.yaml")


def test_every_component_follows_the_package_version() -> None:
    for entry in list_components():
        assert version_problems(COMPONENTS / entry.key) == [], entry.key


def _copy_component(key: str, root: Path) -> Path:
    target = root / "components" / key
    shutil.copytree(COMPONENTS / key, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target.parent / "__init__.py").write_text('"""kubeforge package."""\n')
    return target


def test_drifting_versions_and_images_are_reported(tmp_path: Path) -> None:
    folder = _copy_component("inference/batch", tmp_path)
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    metadata["version"] = "9.9.9"
    metadata["dependencies"]["kubeforge"] = ">=0.2,<0.3"
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    spec = (folder / "component.yaml").read_text()
    (folder / "component.yaml").write_text(spec.replace(IMAGE, "ghcr.io/kubeforge/kubeforge:0.0.9"))

    problems = "\n".join(version_problems(folder))
    assert "version '9.9.9' differs from the package version" in problems
    assert f"'>=0.2,<0.3' does not admit the package version {__version__}" in problems
    assert "runs 'ghcr.io/kubeforge/kubeforge:0.0.9'" in problems


def test_stale_component_yaml_and_readme_are_reported(tmp_path: Path) -> None:
    folder = _copy_component("inference/batch", tmp_path)
    assert stale_generated(tmp_path) == []

    source = (folder / "component.py").read_text()
    (folder / "component.py").write_text(source.replace("chunk_rows: int = 10000,", "chunk_rows: int = 500,"))
    readme = (folder / "README.md").read_text()

    problems = stale_generated(tmp_path)
    assert problems == [
        f"{folder}/component.yaml: stale; run `make compile`",
        f"{folder}/README.md: stale; run `make compile`",
    ]
    (folder / "component.py").write_text(source)
    (folder / "README.md").write_text(readme.replace("Batch prediction", "Batch scoring"))
    assert stale_generated(tmp_path) == [f"{folder}/README.md: stale; run `make compile`"]


def test_spec_compiled_by_another_kfp_patch_release_is_current(tmp_path: Path) -> None:
    """Only the `sdkVersion` stamp differs between kfp 2.17.x releases; the spec itself is what counts."""
    folder = _copy_component("inference/batch", tmp_path)
    spec = folder / "component.yaml"
    stamped = re.sub(r"(?m)^sdkVersion: kfp-.*$", "sdkVersion: kfp-2.17.99", spec.read_text())
    assert stamped != spec.read_text()
    spec.write_text(stamped)
    assert stale_generated(tmp_path) == []


def _scaffold(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = repository_root() / "scripts" / "new_component.py"
    command = [sys.executable, str(script), *args, "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_scaffolded_component_passes_every_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _scaffold(tmp_path, "quality", "row_count", "--summary", "Counts rows: and checks a minimum")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "components" / "quality" / "row_count"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "__init__.py",
        "component.py",
        "component.yaml",
        "core.py",
        "metadata.yaml",
    ]
    assert stale_generated(tmp_path) == []
    assert version_problems(folder) == []
    ruff = Path(sys.executable).parent / "ruff"
    for check in (["check"], ["format", "--check"]):
        linted = subprocess.run([str(ruff), *check, str(folder)], capture_output=True, text=True, check=False)
        assert linted.returncode == 0, linted.stdout

    component = load_component(folder / "component.yaml")
    assert component.name == "quality-row-count"

    @dsl.pipeline(name="scaffold-use")
    def use(data_uri: str) -> None:
        component(data=dsl.importer(artifact_uri=data_uri, artifact_class=Dataset).output, minimum_rows=2)

    compile_pipeline(use, tmp_path / "use.yaml")
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(tmp_path / "rows.csv", index=False)
    core = _load_module(folder / "core.py", "_scaffolded_core", monkeypatch)
    assert core.run(tmp_path / "rows.csv", minimum_rows=2).rows == 3
    with pytest.raises(InputError, match="fewer than minimum_rows=5"):
        core.run(tmp_path / "rows.csv", minimum_rows=5)
    package = _load_module(folder / "__init__.py", "_scaffolded", monkeypatch)
    assert "row_count_op" in package.__all__
    assert package.row_count_op.name == "quality-row-count"  # the KFP op, imported on first use


def _load_package(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import importlib.util

    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location("_scaffolded", init, submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "_scaffolded", module)
    spec.loader.exec_module(module)
    return module


def _load_module(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import the file at `path` as module `name`; an `__init__.py` is imported as a package."""
    import importlib.util

    search = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses and relative imports look it up
    spec.loader.exec_module(module)
    return module


def test_scaffolder_refuses_existing_or_bad_names(tmp_path: Path) -> None:
    assert _scaffold(tmp_path, "quality", "row_count").returncode == 0
    again = _scaffold(tmp_path, "quality", "row_count")
    assert again.returncode != 0 and "exists already" in again.stderr
    bad = _scaffold(tmp_path, "Quality", "x")
    assert bad.returncode != 0 and "stage 'Quality': use lowercase" in bad.stderr
    assert not (tmp_path / "components" / "Quality").exists()
