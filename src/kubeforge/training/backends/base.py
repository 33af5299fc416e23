"""Moved to `kubeforge.launch.base` (kept for the scheduler's kubernetes backend)."""

from kubeforge.launch.base import Resources, TrainingJob

__all__ = ["Resources", "TrainingJob"]
