"""Shared fixtures: real datasets written to disk, and the preprocessing outputs made from them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, running_slurm, slurm_available

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.demo import write_breast_cancer_csv


@dataclass(frozen=True)
class PreparedData:
    """A preprocessed breast cancer dataset: raw CSV, three splits and the fitted preprocessor."""

    csv: Path
    train: Path
    validation: Path
    test: Path
    preprocessor: Path
    statistics: Path


@pytest.fixture(scope="session")
def breast_cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's breast cancer data (569 rows, 30 numeric features, label `target`) as CSV."""
    return write_breast_cancer_csv(tmp_path_factory.mktemp("data") / "breast_cancer.csv")


@pytest.fixture(scope="session")
def prepared(breast_cancer_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    """The breast cancer data run through the preprocess core once per session."""
    out = tmp_path_factory.mktemp("prepared")
    outputs = PreprocessOutputs(
        train=str(out / "train.parquet"),
        validation=str(out / "validation.parquet"),
        test=str(out / "test.parquet"),
        preprocessor=str(out / "preprocessor.json"),
        statistics=str(out / "statistics.md"),
    )
    preprocess(breast_cancer_csv, outputs, label="target")
    return PreparedData(
        csv=breast_cancer_csv,
        train=Path(outputs.train),
        validation=Path(outputs.validation),
        test=Path(outputs.test),
        preprocessor=Path(outputs.preprocessor),
        statistics=Path(outputs.statistics),
    )


@pytest.fixture(scope="session")
def trained_model(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained by the engine on the prepared data (one worker, a few epochs)."""
    from kubeforge.training.config import TrainConfig
    from kubeforge.training.launch_local import run_local

    run_dir = tmp_path_factory.mktemp("trained")
    config = TrainConfig(
        train_data=str(prepared.train),
        validation_data=str(prepared.validation),
        preprocessor=str(prepared.preprocessor),
        model_dir=str(run_dir / "model"),
        run_dir=str(run_dir),
        checkpoint_dir=str(run_dir / "checkpoints"),
        epochs=8,
        learning_rate=0.01,
    )
    run_local(config, workers=1)
    return run_dir / "model"


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A real one-node SLURM cluster on loopback; SLURM_CONF points the clients at it."""
    if not slurm_available():
        pytest.fail("SLURM is not installed: run `make system-deps` (installs slurm-wlm and munge)")
    with running_slurm() as cluster:
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous
