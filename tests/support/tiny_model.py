"""A small real Model artifact made in-process in well under a second (a few full-batch steps, no workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kubeforge.model_format import script_module, write_model_dir
from kubeforge.preprocessor import PreprocessOptions, fit_preprocessor
from kubeforge.tabular import infer_schema
from kubeforge.training.curves import plot_training_curve
from kubeforge.training.models import TabularMLP


def small_table(seed: int = 0, rows: int = 60) -> pd.DataFrame:
    """Two numeric features and a label decided by the first."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "noise": rng.normal(size=rows), "label": np.where(x > 0, "yes", "no")})


def planted_table(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """`color` alone decides the label; `size`, `shade` and `weight` are noise of similar scale."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], size=rows)
    return pd.DataFrame({
        "size": rng.normal(size=rows),
        "color": color,
        "shade": rng.choice(["light", "dark"], size=rows),
        "weight": rng.normal(size=rows),
        "label": np.where(color == "red", "yes", "no"),
    })  # fmt: skip


def write_tiny_model(frame: pd.DataFrame, label: str, directory: Path, epochs: int = 2, seed: int = 0) -> Path:
    """Fit the preprocessor on `frame`, train an MLP for `epochs` full-batch epochs, write the Model directory."""
    preprocessor = fit_preprocessor(frame, infer_schema(frame, label), "classification", PreprocessOptions())
    torch.manual_seed(seed)
    features = torch.tensor(preprocessor.transform(frame))
    targets = torch.tensor(preprocessor.encode_labels(frame[label]))
    model = TabularMLP(features.shape[1], len(preprocessor.classes or []), hidden=(16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    history: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        for _ in range(20):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(features), targets)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        with torch.no_grad():
            logits = model(features)
            accuracy = float((logits.argmax(dim=1) == targets).float().mean())
            val_loss = float(torch.nn.functional.cross_entropy(logits, targets))
        history.append({"epoch": epoch, "train_loss": loss.item(), "val_loss": val_loss, "val_accuracy": accuracy})
    write_model_dir(directory, script_module(model), preprocessor, history, training={"epochs": epochs})
    plot_training_curve(history, directory / "training_curve.png")
    return directory


__all__ = ["planted_table", "small_table", "write_tiny_model"]
