"""Engine options on real worker processes: FSDP, bf16 with gradient accumulation, remote checkpoints."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeforge.artifacts import exists
from kubeforge.errors import InputError
from kubeforge.launch.shared_filesystem import run_local
from kubeforge.model_format import load_model
from kubeforge.training.checkpoint import checkpoint_uri
from kubeforge.training.config import TrainConfig
from kubeforge.training.engine import parameter_checksum


def _config(prepared: Any, tmp_path: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "train_data": str(prepared.train),
        "validation_data": str(prepared.validation),
        "preprocessor": str(prepared.preprocessor),
        "model_dir": str(tmp_path / "run" / "model"),
        "run_dir": str(tmp_path / "run"),
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "hidden_layers": [16],
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 0.01,
    }
    return TrainConfig(**{**values, **overrides})


def test_fsdp_across_two_workers(prepared: Any, tmp_path: Path) -> None:
    summary = run_local(_config(prepared, tmp_path, strategy="fsdp"), workers=2)

    assert summary["strategy"] == "fsdp"
    assert len(set(summary["replica_checksums"])) == 1
    model = load_model(tmp_path / "run" / "model")
    assert parameter_checksum(model.module) == summary["replica_checksums"][0]
    assert model.history[-1]["val_accuracy"] > 0.8


def test_bf16_with_gradient_accumulation(prepared: Any, tmp_path: Path) -> None:
    config = _config(prepared, tmp_path, mixed_precision="bf16", gradient_accumulation_steps=3)
    summary = run_local(config, workers=1)

    batches = math.ceil(len(pd.read_parquet(prepared.train)) / 16)
    assert summary["global_step"] == 2 * math.ceil(batches / 3)
    assert summary["history"][-1]["val_accuracy"] > 0.8


def test_fp16_needs_cuda(prepared: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mixed_precision 'fp16' needs a CUDA device"):
        run_local(_config(prepared, tmp_path, mixed_precision="fp16"), workers=1)


def test_checkpoints_on_s3_resume(prepared: Any, tmp_path: Path, s3_bucket: str) -> None:
    """Checkpoints on moto's S3 server (the real S3 REST API on loopback, through boto3)."""
    checkpoints = f"s3://{s3_bucket}/runs/r1/checkpoints"
    run_local(_config(prepared, tmp_path / "a", checkpoint_dir=checkpoints, epochs=1), workers=1)
    assert exists(checkpoint_uri(checkpoints))

    resumed = run_local(_config(prepared, tmp_path / "b", checkpoint_dir=checkpoints, epochs=2), workers=1)
    assert resumed["resumed_from_epoch"] == 1
    assert [row["epoch"] for row in resumed["history"]] == [1, 2]
