"""Classifier evaluation with metrics, plots and a deployment gate.

`evaluate_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from typing import Any

__all__ = ["evaluate_op"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_op":
        from .component import evaluate_classifier

        return evaluate_classifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
