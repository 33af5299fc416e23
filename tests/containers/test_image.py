"""The kubeforge image runs the components: tabular_classifier through kfp.local's DockerRunner
(every task in the image, via podman's Docker-compatible socket) matches the subprocess run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import kubeforge
from kubeforge.demo import write_breast_cancer_csv
from kubeforge.local_runner import LocalRun, run_pipeline_locally
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier

pytestmark = pytest.mark.containers

# Three epochs keep the lane short; a gate on log_loss that no model meets skips the deploy step.
PARAMS = {"epochs": 3, "workers": 2, "thresholds": '{"log_loss": 0.0001}'}


def test_image_is_tagged_from_the_package_and_runs_as_non_root(image: str, docker_host: str) -> None:
    import docker

    assert image == kubeforge.IMAGE
    client = docker.DockerClient(base_url=docker_host)
    try:
        script = "import os, kubeforge, torch; print(os.getuid(), kubeforge.__version__, torch.__version__)"
        output = client.containers.run(image, ["python3", "-c", script], remove=True).decode().split()
    finally:
        client.close()
    assert output[0] == "10001"
    assert output[1] == kubeforge.__version__
    assert output[2].startswith("2.13.0")


def _outputs(run: LocalRun) -> tuple[pd.DataFrame, dict[str, object], dict[str, float]]:
    test_rows = pd.read_parquet(run.task_dir("preprocess-tabular") / "test_data")
    preprocessor = json.loads((run.task_dir("preprocess-tabular") / "preprocessor").read_text())
    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    return test_rows, preprocessor, evaluation["metrics"]


def test_tabular_classifier_in_the_image_matches_the_subprocess_run(
    docker_host: str, shared_root: Path, tmp_path: Path
) -> None:
    from kfp import local

    data = write_breast_cancer_csv(shared_root / "breast_cancer.csv")
    params = {"data_uri": str(data), **PARAMS}

    in_image = run_pipeline_locally(tabular_classifier, params, shared_root, runner=local.DockerRunner())
    in_process = run_pipeline_locally(tabular_classifier, params, tmp_path / "subprocess")

    image_rows, image_preprocessor, image_metrics = _outputs(in_image)
    local_rows, local_preprocessor, local_metrics = _outputs(in_process)
    pd.testing.assert_frame_equal(image_rows, local_rows)
    assert image_preprocessor == local_preprocessor
    assert image_metrics == pytest.approx(local_metrics, abs=1e-6)
    assert not in_image.task_dir("deploy-model").exists()
    # Written inside the image by its non-root user, not by this process:
    assert (in_image.task_dir("train-pytorch") / "model" / "model.pt").stat().st_uid == 10001
    assert (in_process.task_dir("train-pytorch") / "model" / "model.pt").stat().st_uid == os.getuid()
