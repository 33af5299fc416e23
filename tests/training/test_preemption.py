"""Preemption and step checkpoints in the engine itself, in this process (one rank, deterministic).

A stop request at a chosen step writes a checkpoint at that very step and raises Preempted; the
next run resumes inside the epoch and ends bit-identical to an uninterrupted run. Checkpoints
hold only what `torch.load(weights_only=True)` accepts; anything else is refused.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from kubeforge.errors import InputError
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.checkpoint import checkpoint_uri, load_checkpoint
from kubeforge.training.config import TrainConfig
from kubeforge.training.distributed import DistContext
from kubeforge.training.engine import EVENTS_LOG, architecture_of, train
from kubeforge.training.preemption import Preempted, StopRequest

ONE_RANK = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class StopAtStep(StopRequest):
    """Becomes requested on its `step`-th reading: the engine reads it once per optimizer step."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.readings, self.step = 0, step

    @property  # type: ignore[override]
    def requested(self) -> bool:
        self.readings += 1
        return self.readings >= self.step

    @requested.setter
    def requested(self, value: bool) -> None:
        pass


def _config(prepared: Any, tmp_path: Path, name: str, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "train_data": str(prepared.train),
        "validation_data": str(prepared.validation),
        "preprocessor": str(prepared.preprocessor),
        "model_dir": str(tmp_path / name / "model"),
        "run_dir": str(tmp_path / name),
        "checkpoint_dir": str(tmp_path / name / "ckpt"),
        "hidden_layers": [16],
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 0.01,
    }
    return TrainConfig(**{**values, **overrides})


def test_stop_request_checkpoints_its_step_and_the_resumed_run_is_identical(prepared: Any, tmp_path: Path) -> None:
    straight = train(_config(prepared, tmp_path, "straight"), ONE_RANK)
    steps_per_epoch = straight["global_step"] // 2
    stop_step = steps_per_epoch + 5  # inside epoch 2
    config = _config(prepared, tmp_path, "stopped")

    with pytest.raises(Preempted, match=f"step {stop_step}"):
        train(config, ONE_RANK, StopAtStep(stop_step))
    architecture = architecture_of(config, FittedPreprocessor.load(config.preprocessor))
    checkpoint = load_checkpoint(config.checkpoint_dir, architecture)
    assert checkpoint is not None
    assert (checkpoint.epoch, checkpoint.global_step, checkpoint.step_in_epoch) == (1, stop_step, 5)
    resumed = train(config, ONE_RANK)

    assert resumed["global_step"] == straight["global_step"]
    assert resumed["replica_checksums"] == straight["replica_checksums"]
    assert [row["epoch"] for row in resumed["history"]] == [1, 2]
    assert resumed["history"][1]["train_loss"] == straight["history"][1]["train_loss"]
    events = (Path(config.run_dir) / EVENTS_LOG).read_text()
    assert f'"resumed_at_step": {stop_step}' in events


def test_checkpoints_every_n_steps(prepared: Any, tmp_path: Path) -> None:
    config = _config(prepared, tmp_path, "every", epochs=1, checkpoint_every_steps=4)
    architecture = architecture_of(config, FittedPreprocessor.load(config.preprocessor))
    written: list[int] = []
    stop = StopAtStep(10**9)
    original = torch.save

    def spy(obj: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(obj, dict) and "global_step" in obj:
            written.append(obj["global_step"])
        original(obj, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", spy)
        summary = train(config, ONE_RANK, stop)
    steps = summary["global_step"]
    assert written == [*range(4, steps, 4), steps]
    final = load_checkpoint(config.checkpoint_dir, architecture)
    assert final is not None and final.step_in_epoch == 0 and final.epoch == 1


def test_checkpoint_that_needs_unpickling_code_is_refused(prepared: Any, tmp_path: Path) -> None:
    config = _config(prepared, tmp_path, "evil", epochs=1)
    target = Path(checkpoint_uri(config.checkpoint_dir))
    target.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save({"epoch": 1, "payload": _Payload()}, buffer)
    target.write_bytes(buffer.getvalue())
    architecture = architecture_of(config, FittedPreprocessor.load(config.preprocessor))

    with pytest.raises(InputError, match="weights_only=True"):
        load_checkpoint(config.checkpoint_dir, architecture)


class _Payload:
    """An object whose unpickling calls a function: what weights_only loading refuses."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.getcwd, ())
