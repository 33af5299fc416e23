"""The training-curve PNG written next to the model: losses and the validation metric per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

LOWER_IS_BETTER_SUFFIXES = ("loss", "rmse")
"""Validation metrics (val_loss, val_rmse) minimised; every other one (val_accuracy) is maximised."""


def lower_is_better(metric: str) -> bool:
    """Losses and errors are minimised; every other metric is maximised."""
    return metric.endswith(LOWER_IS_BETTER_SUFFIXES)


def plot_training_curve(history: list[dict[str, Any]], path: Path) -> Path:
    """Plot train/validation loss and the validation metric over epochs into `path`."""
    figure = Figure(figsize=(8, 3.5))
    losses, metric = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    losses.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    losses.plot(epochs, [row["val_loss"] for row in history], marker="o", label="validation")
    losses.set(xlabel="epoch", ylabel="loss", title="Loss")
    losses.legend()
    name = "val_accuracy" if history and "val_accuracy" in history[0] else "val_rmse"
    metric.plot(epochs, [row.get(name, float("nan")) for row in history], marker="o", color="tab:green")
    metric.set(xlabel="epoch", ylabel=name, title=name.replace("_", " "))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


__all__ = ["LOWER_IS_BETTER_SUFFIXES", "lower_is_better", "plot_training_curve"]
