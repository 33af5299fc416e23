"""The training loop, torchrun-compatible: DDP or FSDP over the launcher's process group.

Every epoch ends with an atomic checkpoint (model, optimizer, history, step count) written
by rank 0; so do every `checkpoint_every_steps` optimizer steps and a stop request
(SIGTERM, or a tuner's `stop` at the epoch gate), which then raises Preempted. A restarted
or re-run job resumes from it, mid-epoch included. Gradient accumulation, mixed precision and
the strategy come from the configuration. At the end rank 0 writes the Model artifact, including a training-curve PNG;
every rank reports a checksum of its parameters so the summary shows that the replicas agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kubeforge.artifacts import atomic_output_dir
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from kubeforge.training.class_weighting import loss_class_weights
from kubeforge.training.config import TrainConfig
from kubeforge.training.data import TensorSplit, load_split, shard_indices
from kubeforge.training.distributed import DistContext, all_mean, any_rank, barrier, gather_floats, gather_strings
from kubeforge.training.epoch_gate import wait_for_gate
from kubeforge.training.models import build_model
from kubeforge.training.precision import autocast, check_precision, grad_scaler
from kubeforge.training.preemption import Preempted, StopRequest

SUMMARY_FILE = "summary.json"
METRICS_LOG = "metrics.jsonl"
EVENTS_LOG = "events.jsonl"
CURVE_FILE = "training_curve.png"
_STOP_CHECK_STEPS = 32
"""Ranks agree on a stop request every this many optimizer steps (one tiny all-reduce), and at epoch ends."""


def train(config: TrainConfig, context: DistContext, stop: StopRequest | None = None) -> dict[str, Any]:
    """Train (or resume) to `config.epochs` epochs; returns the run summary on every rank.

    When `stop` is requested (SIGTERM) every rank finishes its step, a checkpoint is written at
    that step and Preempted is raised; the next run resumes from that very step.
    """
    torch.manual_seed(config.seed)
    check_precision(config.mixed_precision, context.device)
    preprocessor = FittedPreprocessor.load(config.preprocessor)
    train_split = load_split(config.train_data, preprocessor, "train_data")
    validation_split = load_split(config.validation_data, preprocessor, "validation_data")
    class_weights = loss_class_weights(config.class_weighting, preprocessor, train_split.targets, config.preprocessor)
    architecture = architecture_of(config, preprocessor)
    model = _new_model(config, architecture).to(context.device)
    resumed = load_checkpoint(config.checkpoint_dir, architecture)
    if resumed is not None:
        model.load_state_dict(resumed.model)
    wrapped = _wrap(model, config, context)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history: list[dict[str, Any]] = []
    start_epoch, global_step = 0, 0
    position = _Position(0, 0.0)
    if resumed is not None:
        state_dicts = _state_dict_api()
        state_dicts.set_optimizer_state_dict(model, optimizer, resumed.optimizer, options=_full_state())
        history, start_epoch, global_step = list(resumed.history), resumed.epoch, resumed.global_step
        partial = resumed.partial_loss  # one running loss sum per rank; none after a change of world size
        loss_sum = partial[context.rank] if len(partial) == context.world_size else 0.0
        position = _Position(resumed.step_in_epoch, loss_sum)
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    _event(config, context, "start", attempt=attempt, resumed_from_epoch=start_epoch, resumed_at_step=global_step)
    scaler = grad_scaler(config.mixed_precision, context.device)
    stop = stop or StopRequest()

    def save(epoch: int, step: int, at: _Position | None) -> None:
        """Every rank takes part (full state dicts, loss sums); rank 0 writes."""
        state_dicts = _state_dict_api()
        model_state = state_dicts.get_model_state_dict(model, options=_full_state())
        optimizer_state = state_dicts.get_optimizer_state_dict(model, optimizer, options=_full_state())
        partial = gather_floats(at.loss_sum, context) if at is not None else []
        if context.is_main:
            save_checkpoint(
                config.checkpoint_dir,
                Checkpoint(
                    epoch,
                    step,
                    model_state,
                    optimizer_state,
                    history,
                    architecture,
                    at.batches if at is not None else 0,
                    partial,
                ),
            )
        barrier(context)

    def preempted(epoch: int, step: int) -> Preempted:
        _event(config, context, "preempted", epoch=epoch, global_step=step)
        return Preempted(epoch, step)

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        epoch_start_step = global_step - position.steps_done(config)

        def at_step(at: _Position, steps: int, epoch: int = epoch, first: int = epoch_start_step) -> None:
            step = first + steps
            every = config.checkpoint_every_steps
            check = not context.distributed or step % _STOP_CHECK_STEPS == 0
            stopping = check and any_rank(stop.requested, context)
            if stopping or (every and step % every == 0):
                save(epoch, step, at)
            if stopping:
                raise preempted(epoch, step)

        loss, samples, steps = _train_epoch(
            wrapped, optimizer, scaler, train_split, class_weights, config, context, epoch, position, at_step
        )
        seconds = time.perf_counter() - started
        global_step = epoch_start_step + steps
        position = _Position(0, 0.0)
        row = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "train_loss": all_mean(loss, context),
            **_validate(model, validation_split, preprocessor, config, context),
            "seconds": round(seconds, 4),
            "samples_per_second": all_mean(samples / seconds, context) * context.world_size,
        }
        history.append(row)
        if context.is_main:
            print(json.dumps(row), flush=True)
            _append_json(Path(config.run_dir) / METRICS_LOG, row)
        save(epoch + 1, global_step, None)
        if config.epoch_gate and epoch + 1 < config.epochs and not wait_for_gate(config.epoch_gate, epoch + 1):
            stop.requested = True  # a tuner pruned this trial: end checkpointed, as a preemption does
        if epoch + 1 < config.epochs and any_rank(stop.requested, context):
            raise preempted(epoch + 1, global_step)

    state_dicts = _state_dict_api()
    full_state = state_dicts.get_model_state_dict(model, options=state_dicts.StateDictOptions(full_state_dict=True))
    checksums = gather_strings(state_checksum(full_state), context)
    summary = {
        "world_size": context.world_size,
        "strategy": config.strategy,
        "attempt": attempt,
        "resumed_from_epoch": start_epoch,
        "epochs_run": config.epochs - start_epoch,
        "epochs": config.epochs,
        "global_step": global_step,
        "replica_checksums": checksums,
        "architecture": architecture,
        "class_weights": None if class_weights is None else class_weights.tolist(),
        "history": history,
    }
    if context.is_main:
        _export(config, architecture, full_state, preprocessor, summary)
    return summary


def state_checksum(state: dict[str, Any]) -> str:
    """SHA-256 over every tensor of a state dict, in key order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parameter_checksum(model: nn.Module) -> str:
    """SHA-256 over a plain module's state dict, comparable with the run's replica checksums."""
    return state_checksum(model.state_dict())


def architecture_of(config: TrainConfig, preprocessor: FittedPreprocessor) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: model, shape and task."""
    return {
        "model": config.model,
        "in_features": len(preprocessor.output_columns),
        "out_features": len(preprocessor.classes) if preprocessor.classes else 1,
        "hidden_layers": list(config.hidden_layers),
        "task": preprocessor.task,
    }


def _new_model(config: TrainConfig, architecture: dict[str, Any]) -> nn.Module:
    return build_model(
        config.model, architecture["in_features"], architecture["out_features"], config.hidden_layers, config.dropout
    )


def _wrap(model: nn.Module, config: TrainConfig, context: DistContext) -> nn.Module:
    if not context.distributed:
        return model
    if config.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        fully_shard(model)
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


@dataclass(frozen=True)
class _Position:
    """How far into an epoch a rank is: batches done and the sum of their losses."""

    batches: int
    loss_sum: float

    def steps_done(self, config: TrainConfig) -> int:
        """Optimizer steps those batches made (a checkpoint is taken only on a step boundary)."""
        return self.batches // config.gradient_accumulation_steps


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    split: TensorSplit,
    class_weights: torch.Tensor | None,
    config: TrainConfig,
    context: DistContext,
    epoch: int,
    start: _Position,
    at_step: Callable[[_Position, int], None],
) -> tuple[float, int, int]:
    """One epoch from `start`; `at_step(position, steps)` runs after each optimizer step but the last.

    Returns the mean loss over the epoch's batches, the samples seen now and the epoch's optimizer steps.
    """
    model.train()
    weights = None if class_weights is None else class_weights.to(context.device)
    indices = shard_indices(len(split), context.rank, context.world_size, config.seed, epoch)
    batches = math.ceil(len(indices) / config.batch_size)
    accumulate = config.gradient_accumulation_steps
    total, steps, samples = start.loss_sum, start.steps_done(config), 0
    optimizer.zero_grad(set_to_none=True)
    for batch_number in range(start.batches, batches):
        # Dropout draws from a generator seeded by (seed, epoch, rank, batch), so a batch replayed
        # after a resume, mid-epoch included, draws exactly what an uninterrupted run drew.
        _seed_dropout(((config.seed * 1_000_003 + epoch) * 1_009 + context.rank) * 100_003 + batch_number, context)
        batch = indices[batch_number * config.batch_size : (batch_number + 1) * config.batch_size]
        features = split.features[batch].to(context.device, non_blocking=True)
        targets = split.targets[batch].to(context.device, non_blocking=True)
        boundary = (batch_number + 1) % accumulate == 0 or batch_number + 1 == batches
        with _no_sync_unless(model, boundary), autocast(config.mixed_precision, context.device):
            loss = _loss(model(features), targets, weights, config.regression_loss)
        scaler.scale(loss / accumulate).backward()  # type: ignore[no-untyped-call]
        total += float(loss.detach())
        samples += len(batch)
        if boundary:
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            if batch_number + 1 < batches:
                at_step(_Position(batch_number + 1, total), steps)
    return total / max(batches, 1), samples, steps


def _seed_dropout(seed: int, context: DistContext) -> None:
    """Seed only this device's default generator: torch.manual_seed seeds every backend (~0.15 ms a batch)."""
    if context.device.type == "cuda":
        torch.cuda.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


def _no_sync_unless(model: nn.Module, boundary: bool) -> contextlib.AbstractContextManager[object]:
    """Skip DDP's gradient all-reduce on accumulation steps that do not end in an optimizer step."""
    if boundary or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def _loss(
    outputs: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor | None = None, regression: str = "mse"
) -> torch.Tensor:
    """Cross-entropy (weighted per class when `class_weights` is given), or the regression loss (mse, huber)
    on standardized targets."""
    outputs = outputs.float()
    if targets.dtype == torch.int64:
        return F.cross_entropy(outputs, targets, weight=class_weights)
    if regression == "huber":
        return F.huber_loss(outputs.squeeze(-1), targets)
    return F.mse_loss(outputs.squeeze(-1), targets)


@torch.no_grad()
def _validate(
    model: nn.Module, split: TensorSplit, preprocessor: FittedPreprocessor, config: TrainConfig, context: DistContext
) -> dict[str, float]:
    model.eval()
    with autocast(config.mixed_precision, context.device):
        outputs = model(split.features.to(context.device)).float()
    targets = split.targets.to(context.device)
    metrics = {"val_loss": float(_loss(outputs, targets, regression=config.regression_loss))}
    if preprocessor.task == "classification":
        metrics["val_accuracy"] = float((outputs.argmax(dim=1) == targets).float().mean())
    else:  # in the label's units
        scale = preprocessor.target_scaler[1] if preprocessor.target_scaler else 1.0
        metrics["val_rmse"] = float(torch.sqrt(F.mse_loss(outputs.squeeze(-1), targets))) * scale
    return metrics


def _export(
    config: TrainConfig,
    architecture: dict[str, Any],
    state: dict[str, Any],
    preprocessor: FittedPreprocessor,
    summary: dict[str, Any],
) -> None:
    """Rank 0: rebuild a plain model from the full state, script it, write the Model directory."""
    from kubeforge.model_format import script_module, write_model_dir  # imported at the end: a start is faster
    from kubeforge.training.curves import plot_training_curve

    plain = _new_model(config, architecture)
    plain.load_state_dict({name: tensor.cpu() for name, tensor in state.items()})
    facts = {key: value for key, value in summary.items() if key != "history"}
    with atomic_output_dir(config.model_dir) as model_dir:
        write_model_dir(model_dir, script_module(plain), preprocessor, summary["history"], training=facts)
        plot_training_curve(summary["history"], model_dir / CURVE_FILE)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))


def _state_dict_api() -> ModuleType:
    """torch's state-dict API for every strategy (DDP, FSDP); it takes seconds to import, so a
    launcher that only checks inputs, and a fresh start until its first checkpoint, go without."""
    import torch.distributed.checkpoint.state_dict as api

    return api


def _full_state() -> Any:
    """Options for whole (unsharded) state dicts on the CPU: what a checkpoint holds."""
    return _state_dict_api().StateDictOptions(full_state_dict=True, cpu_offload=True)


def _event(config: TrainConfig, context: DistContext, event: str, **fields: Any) -> None:
    if context.is_main:
        _append_json(Path(config.run_dir) / EVENTS_LOG, {"event": event, "time": time.time(), **fields})


def _append_json(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


__all__ = [
    "architecture_of",
    "CURVE_FILE",
    "EVENTS_LOG",
    "METRICS_LOG",
    "SUMMARY_FILE",
    "parameter_checksum",
    "state_checksum",
    "train",
]
