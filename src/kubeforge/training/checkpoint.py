"""Atomic checkpoints (per epoch, every N steps, on preemption) on a local path or an s3:// / gs:// prefix.

The checkpoint is serialized in memory and written through kubeforge.artifacts, whose writes
are atomic (temporary file and rename locally, a single PUT remotely): a crash mid-write
leaves the previous checkpoint intact. It holds only tensors, numbers, strings, lists and
dicts, and is read back with `torch.load(weights_only=True)`: a checkpoint cannot run code.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from kubeforge.artifacts import exists, read_bytes, write_bytes
from kubeforge.errors import InputError

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class Checkpoint:
    """The state after `epoch` completed epochs and `global_step` optimizer steps.

    A checkpoint taken inside an epoch also records how many of that epoch's batches are done
    (`step_in_epoch`) and each rank's running loss sum (`partial_loss`, by rank), so the epoch
    resumes where it stopped.
    """

    epoch: int
    global_step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    history: list[dict[str, Any]]
    architecture: dict[str, Any]
    step_in_epoch: int = 0
    partial_loss: list[float] = field(default_factory=list)


def checkpoint_uri(directory: str) -> str:
    """Where the latest checkpoint of a run lives."""
    return f"{directory.rstrip('/')}/{CHECKPOINT_FILE}"


def save_checkpoint(directory: str, checkpoint: Checkpoint) -> str:
    """Write the checkpoint atomically; returns its URI."""
    buffer = io.BytesIO()
    torch.save(asdict(checkpoint), buffer)
    uri = checkpoint_uri(directory)
    write_bytes(uri, buffer.getvalue())
    return uri


def load_checkpoint(directory: str, architecture: dict[str, Any]) -> Checkpoint | None:
    """Load the latest checkpoint if there is one; refuse one made for another architecture."""
    uri = checkpoint_uri(directory)
    if not exists(uri):
        return None
    try:
        state = torch.load(io.BytesIO(read_bytes(uri)), map_location="cpu", weights_only=True)
        checkpoint = Checkpoint(**state)
    except (pickle.UnpicklingError, RuntimeError, TypeError, EOFError) as exc:
        raise InputError(
            f"checkpoint_dir {directory}: {CHECKPOINT_FILE} is not a kubeforge checkpoint that loads with "
            f"weights_only=True ({str(exc).splitlines()[0][:200]}); point checkpoint_dir at an empty folder"
        ) from None
    if checkpoint.architecture != architecture:
        raise InputError(
            f"checkpoint_dir {directory}: its checkpoint is for {checkpoint.architecture}, "
            f"not {architecture}; point checkpoint_dir at an empty folder to start afresh"
        )
    return checkpoint


__all__ = ["CHECKPOINT_FILE", "Checkpoint", "checkpoint_uri", "load_checkpoint", "save_checkpoint"]
