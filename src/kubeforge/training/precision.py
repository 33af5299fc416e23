"""Mixed precision and sharding choices, checked against what this machine can do."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch

from kubeforge.errors import InputError


def check_precision(mixed_precision: str, device: torch.device) -> None:
    """Refuse combinations the device cannot run, naming the parameter."""
    if mixed_precision == "fp16" and device.type != "cuda":
        raise InputError("mixed_precision 'fp16' needs a CUDA device; use 'bf16' or 'no' on CPU")
    if mixed_precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("mixed_precision 'bf16' is not supported by this GPU; use 'fp16' or 'no'")


def autocast(mixed_precision: str, device: torch.device) -> AbstractContextManager[object]:
    """The autocast context for the forward pass (a no-op without mixed precision)."""
    if mixed_precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(mixed_precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for fp16 on CUDA (bf16 needs none)."""
    return torch.amp.GradScaler(device.type, enabled=mixed_precision == "fp16" and device.type == "cuda")


__all__ = ["autocast", "check_precision", "grad_scaler"]
