"""The training engine under torchrun with real worker processes (gloo on CPU), launched by the
`local` backend and by a real one-node SLURM cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubeforge.errors import InputError
from kubeforge.launch.base import TrainingJob
from kubeforge.launch.shared_filesystem import run_local, run_on_shared_filesystem
from kubeforge.launch.slurm import SlurmBackend
from kubeforge.model_format import load_model
from kubeforge.training.checkpoint import Checkpoint, save_checkpoint
from kubeforge.training.config import TrainConfig
from kubeforge.training.engine import parameter_checksum


def _config(prepared: Any, run_dir: Path, checkpoint_dir: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        train_data=str(prepared.train),
        validation_data=str(prepared.validation),
        preprocessor=str(prepared.preprocessor),
        model_dir=str(run_dir / "model"),
        run_dir=str(run_dir),
        checkpoint_dir=str(checkpoint_dir),
        hidden_layers=[16],
        epochs=epochs,
        batch_size=16,
        learning_rate=0.01,
    )


@pytest.mark.parametrize("backend", ["local", "slurm"])
def test_two_workers_end_with_identical_parameters(
    prepared: Any, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    config = _config(prepared, tmp_path / "run", tmp_path / "ckpt", epochs=3)
    if backend == "slurm":
        request.getfixturevalue("slurm")
        job = TrainingJob(name="ddp-two-workers", config=config, nproc_per_node=2)
        summary = run_on_shared_filesystem(SlurmBackend(), job, poll_s=0.5)
    else:
        summary = run_local(config, workers=2)

    assert summary["world_size"] == 2
    assert len(summary["replica_checksums"]) == 2
    assert summary["replica_checksums"][0] == summary["replica_checksums"][1]
    model = load_model(tmp_path / "run" / "model")
    assert parameter_checksum(model.module) == summary["replica_checksums"][0]
    assert [row["epoch"] for row in model.history] == [1, 2, 3]
    assert model.history[-1]["val_accuracy"] > 0.85
    assert model.manifest["framework"]["torch"]
    assert model.manifest["training"]["world_size"] == 2
    assert (tmp_path / "run" / "model" / "training_curve.png").read_bytes().startswith(b"\x89PNG")


def test_resumed_run_continues_from_its_checkpoint(prepared: Any, tmp_path: Path) -> None:
    """2 epochs, then a run asked for 4 on the same checkpoint_dir trains only epochs 3-4 and
    ends bit-identical to an uninterrupted 4-epoch run."""
    first = run_local(_config(prepared, tmp_path / "a", tmp_path / "ckpt", epochs=2), workers=2)
    resumed = run_local(_config(prepared, tmp_path / "b", tmp_path / "ckpt", epochs=4), workers=2)
    straight = run_local(_config(prepared, tmp_path / "c", tmp_path / "fresh", epochs=4), workers=2)

    assert first["resumed_from_epoch"] == 0 and first["epochs_run"] == 2
    assert resumed["resumed_from_epoch"] == 2 and resumed["epochs_run"] == 2
    assert resumed["history"][:2] == first["history"]
    assert [row["epoch"] for row in resumed["history"]] == [1, 2, 3, 4]
    assert resumed["replica_checksums"] == straight["replica_checksums"]
    assert first["replica_checksums"] != straight["replica_checksums"]


def test_checkpoint_for_another_architecture_is_refused(prepared: Any, tmp_path: Path) -> None:
    """Refused before any worker starts: the launcher checks the checkpoint against the model."""
    other = {"model": "mlp", "in_features": 3, "out_features": 2, "hidden_layers": [8], "task": "classification"}
    save_checkpoint(str(tmp_path / "ckpt"), Checkpoint(1, 10, {}, {}, [], other))

    with pytest.raises(InputError, match=r"checkpoint_dir .* is for"):
        run_local(_config(prepared, tmp_path / "b", tmp_path / "ckpt", epochs=2), workers=1)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_data": "missing.parquet"}, "missing.parquet does not exist"),
        ({"preprocessor": "train"}, "preprocessor"),
    ],
)
def test_bad_inputs_fail_before_workers_start(
    prepared: Any, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    base = _config(prepared, tmp_path / "run", tmp_path / "ckpt", epochs=1).__dict__
    values = {key: (str(getattr(prepared, value)) if value == "train" else value) for key, value in change.items()}
    with pytest.raises(InputError, match=message):
        run_local(TrainConfig(**{**base, **values}), workers=2)
    assert not (tmp_path / "run").exists()


def test_worker_count_is_validated(prepared: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="workers is 0"):
        run_local(_config(prepared, tmp_path / "run", tmp_path / "ckpt", epochs=1), workers=0)
