"""Atomic per-epoch checkpoints: written to a temporary file, then renamed into place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kubeforge.errors import InputError

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class Checkpoint:
    """The state after `epoch` completed epochs."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    history: list[dict[str, Any]]
    architecture: dict[str, Any]


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write the checkpoint so that a crash mid-write leaves the previous one intact."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / CHECKPOINT_FILE
    tmp = directory / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    torch.save(checkpoint.__dict__, tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(final)
    return final


def load_checkpoint(directory: Path, architecture: dict[str, Any]) -> Checkpoint | None:
    """Load the latest checkpoint if there is one; refuse one made for another architecture."""
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint = Checkpoint(**state)
    if checkpoint.architecture != architecture:
        raise InputError(
            f"checkpoint_dir {directory}: its checkpoint is for {checkpoint.architecture}, "
            f"not {architecture}; point checkpoint_dir at an empty folder to start afresh"
        )
    return checkpoint


__all__ = ["CHECKPOINT_FILE", "Checkpoint", "load_checkpoint", "save_checkpoint"]
