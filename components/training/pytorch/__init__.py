"""Distributed PyTorch training of tabular models.

`train_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from typing import Any

__all__ = ["train_op"]


def __getattr__(name: str) -> Any:
    if name == "train_op":
        from .component import train_pytorch

        return train_pytorch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
