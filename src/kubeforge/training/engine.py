"""The training loop: DDP over whatever process group the launcher created.

Rank 0 writes an atomic checkpoint after every epoch and, at the end, the Model artifact;
every rank reports a checksum of its parameters so the summary shows the replicas agree.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kubeforge.model_format import script_module, write_model_dir
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from kubeforge.training.config import TrainConfig
from kubeforge.training.data import TensorSplit, load_split, shard_indices
from kubeforge.training.distributed import DistContext, all_mean, barrier, gather_strings
from kubeforge.training.models import TabularMLP

SUMMARY_FILE = "summary.json"


def train(config: TrainConfig, context: DistContext) -> dict[str, Any]:
    """Train (or resume) to `config.epochs` epochs; returns the run summary on every rank."""
    torch.manual_seed(config.seed)
    preprocessor = FittedPreprocessor.load(config.preprocessor)
    train_split = load_split(config.train_data, preprocessor, "train_data")
    validation_split = load_split(config.validation_data, preprocessor, "validation_data")
    out_features = len(preprocessor.classes) if preprocessor.classes else 1
    architecture = {
        "in_features": len(preprocessor.output_columns),
        "out_features": out_features,
        "hidden_layers": list(config.hidden_layers),
        "task": preprocessor.task,
    }
    model = TabularMLP(len(preprocessor.output_columns), out_features, config.hidden_layers, config.dropout)
    model.to(context.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    checkpoint_dir = Path(config.checkpoint_dir)
    resumed = load_checkpoint(checkpoint_dir, architecture)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resumed is not None:
        model.load_state_dict(resumed.model)
        optimizer.load_state_dict(resumed.optimizer)
        history, start_epoch = list(resumed.history), resumed.epoch
    wrapped: nn.Module = DistributedDataParallel(model) if context.distributed else model

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        train_loss, samples = _train_epoch(wrapped, optimizer, train_split, config, context, epoch)
        seconds = time.perf_counter() - started
        row = {
            "epoch": epoch + 1,
            "train_loss": all_mean(train_loss, context),
            **_validate(model, validation_split, preprocessor),
            "seconds": round(seconds, 4),
            "samples_per_second": all_mean(samples / seconds, context) * context.world_size,
        }
        history.append(row)
        if context.is_main:
            print(json.dumps(row), flush=True)
            save_checkpoint(
                checkpoint_dir,
                Checkpoint(epoch + 1, model.state_dict(), optimizer.state_dict(), history, architecture),
            )
        barrier(context)

    checksums = gather_strings(parameter_checksum(model), context)
    summary = {
        "world_size": context.world_size,
        "resumed_from_epoch": start_epoch,
        "epochs_run": config.epochs - start_epoch,
        "epochs": config.epochs,
        "replica_checksums": checksums,
        "architecture": architecture,
        "history": history,
    }
    if context.is_main:
        scripted = script_module(model.cpu())
        training_facts = {k: v for k, v in summary.items() if k != "history"}
        write_model_dir(config.model_dir, scripted, preprocessor, history, training=training_facts)
        (Path(config.run_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def parameter_checksum(model: nn.Module) -> str:
    """SHA-256 over every parameter's bytes, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: TensorSplit,
    config: TrainConfig,
    context: DistContext,
    epoch: int,
) -> tuple[float, int]:
    model.train()
    # Dropout draws from a generator seeded by (seed, epoch, rank), so an epoch replayed after a
    # resume draws exactly what it would have drawn in an uninterrupted run.
    torch.manual_seed(config.seed * 1_000_003 + epoch * 1_009 + context.rank)
    indices = shard_indices(len(split), context.rank, context.world_size, config.seed, epoch)
    total, steps = 0.0, 0
    for start in range(0, len(indices), config.batch_size):
        batch = indices[start : start + config.batch_size]
        features = split.features[batch].to(context.device, non_blocking=True)
        targets = split.targets[batch].to(context.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(model(features), targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1), len(indices)


def _loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.dtype == torch.int64:
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs.squeeze(-1), targets)


@torch.no_grad()
def _validate(model: nn.Module, split: TensorSplit, preprocessor: FittedPreprocessor) -> dict[str, float]:
    model.eval()
    device = next(model.parameters()).device
    outputs = model(split.features.to(device))
    targets = split.targets.to(device)
    metrics = {"val_loss": float(_loss(outputs, targets))}
    if preprocessor.task == "classification":
        metrics["val_accuracy"] = float((outputs.argmax(dim=1) == targets).float().mean())
    else:
        metrics["val_rmse"] = float(torch.sqrt(F.mse_loss(outputs.squeeze(-1), targets)))
    return metrics


__all__ = ["SUMMARY_FILE", "parameter_checksum", "train"]
