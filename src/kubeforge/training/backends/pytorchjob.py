"""Moved to `kubeforge.launch.pytorchjob` (kept for the scheduler's kubernetes backend)."""

from kubeforge.launch.pytorchjob import PyTorchJobBackend

__all__ = ["PyTorchJobBackend"]
