"""Every pipeline under pipelines/ compiles to exactly its checked-in golden YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.catalog.pipelines import builtin_pipelines, load_pipeline
from kubeforge_dev.catalog_build import pipeline_folders, repository_root

PIPELINES = [folder.name for folder in pipeline_folders(repository_root())]


def test_every_pipeline_folder_is_a_builtin_pipeline() -> None:
    assert builtin_pipelines() == PIPELINES
    assert {"image_classifier", "hyperparameter_sweep", "champion_challenger", "batch_prediction"} <= set(PIPELINES)


@pytest.mark.parametrize("name", PIPELINES)
def test_compiles_to_golden_file(name: str, tmp_path: Path) -> None:
    compile_pipeline(load_pipeline(name), tmp_path / "pipeline.yaml")
    golden = repository_root() / "pipelines" / name / "pipeline.yaml"
    assert (tmp_path / "pipeline.yaml").read_text() == golden.read_text(), "run `make compile`"


def test_sweep_limits_parallelism_and_collects_models() -> None:
    spec = yaml.safe_load((repository_root() / "pipelines" / "hyperparameter_sweep" / "pipeline.yaml").read_text())
    branches = spec["components"]["comp-condition-branches-1"]["dag"]["tasks"]
    grid = spec["components"][branches["condition-3"]["componentRef"]["name"]]["dag"]["tasks"]
    loop = grid["for-loop-2"]
    assert loop["iteratorPolicy"]["parallelismLimit"] == 2
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--search_space"
    selector = grid["select-best-model"]
    assert selector["inputs"]["artifacts"]["models"]["taskOutputArtifact"]["producerTask"] == "for-loop-2"


def test_sweep_strategy_picks_the_grid_or_the_optuna_branch() -> None:
    spec = yaml.safe_load((repository_root() / "pipelines" / "hyperparameter_sweep" / "pipeline.yaml").read_text())
    assert spec["root"]["inputDefinitions"]["parameters"]["strategy"]["defaultValue"] == "grid"
    branches = spec["components"]["comp-condition-branches-1"]["dag"]["tasks"]
    grid_when = "inputs.parameter_values['pipelinechannel--strategy'] != 'optuna'"
    assert branches["condition-3"]["triggerPolicy"]["condition"] == grid_when
    assert branches["condition-4"]["triggerPolicy"]["condition"] == f"!({grid_when})"
    tuned = spec["components"][branches["condition-4"]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(tuned) == {"tune-optuna", "evaluate-classifier-2"}
    inputs = tuned["tune-optuna"]["inputs"]["parameters"]
    assert inputs["search_space"]["componentInputParameter"] == "pipelinechannel--tuning_space"
    evaluated = tuned["evaluate-classifier-2"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert evaluated == {"outputArtifactKey": "best_model", "producerTask": "tune-optuna"}


def _compiled_tasks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task of a compiled pipeline: the root DAG's and every nested DAG's (conditions, loops)."""
    dags = [spec["root"]["dag"], *(component["dag"] for component in spec["components"].values() if "dag" in component)]
    return [task for dag in dags for task in dag["tasks"].values()]


def test_no_deploy_task_is_ever_served_from_the_cache() -> None:
    """A deploy served from the cache would start no server, so every deploy task opts out of caching."""
    deploys = {
        (name, task["taskInfo"]["name"]): task.get("cachingOptions", {})
        for name in PIPELINES
        for task in _compiled_tasks(
            yaml.safe_load((repository_root() / "pipelines" / name / "pipeline.yaml").read_text())
        )
        if task["componentRef"]["name"].startswith("comp-deploy-model")
    }
    assert {name for name, _ in deploys} >= {"tabular_classifier", "tabular_regressor", "champion_challenger"}
    assert {task: options for task, options in deploys.items() if options.get("enableCache", False)} == {}
