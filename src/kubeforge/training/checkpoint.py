"""Atomic per-epoch checkpoints on a local path or an s3:// / gs:// prefix.

The checkpoint is serialized in memory and written through kubeforge.artifacts, whose writes
are atomic (temporary file and rename locally, a single PUT remotely): a crash mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import torch

from kubeforge.artifacts import exists, read_bytes, write_bytes
from kubeforge.errors import InputError

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class Checkpoint:
    """The state after `epoch` completed epochs and `global_step` optimizer steps."""

    epoch: int
    global_step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    history: list[dict[str, Any]]
    architecture: dict[str, Any]


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
    state = torch.load(io.BytesIO(read_bytes(uri)), map_location="cpu", weights_only=False)
    checkpoint = Checkpoint(**state)
    if checkpoint.architecture != architecture:
        raise InputError(
            f"checkpoint_dir {directory}: its checkpoint is for {checkpoint.architecture}, "
            f"not {architecture}; point checkpoint_dir at an empty folder to start afresh"
        )
    return checkpoint


__all__ = ["CHECKPOINT_FILE", "Checkpoint", "checkpoint_uri", "load_checkpoint", "save_checkpoint"]
