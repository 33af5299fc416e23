"""Which raw columns drive a model's predictions: attributions for rows of a table, folded to raw columns.

Two methods, shared by the `evaluation/explain` component and the model server's explain route:

- `integrated_gradients` (captum): attributions of the predicted class's logit (or the regression
  value) to each encoded feature, against an all-zeros baseline (the training mean of every
  standardized column, no category), then folded back to raw columns through the fitted
  preprocessor: the columns of a one-hot group sum to their raw column.
- `permutation`: the model-agnostic fallback. Each raw column is shuffled among the rows in turn; a
  row's attribution is how much its predicted-class probability (or value) moves, and the global
  importance is the mean absolute move. It needs at least two rows.

`auto` picks Integrated Gradients when captum is installed (the `explain` extra), else permutation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor

METHODS = ("auto", "integrated_gradients", "permutation")
DEFAULT_STEPS = 32


@dataclass(frozen=True)
class Explanation:
    """Per-row attributions to raw columns, their global importance (mean |attribution|) and the method used."""

    method: str
    columns: list[str]
    row_attributions: np.ndarray
    predictions: list[object]

    @property
    def importance(self) -> dict[str, float]:
        """Raw column -> mean absolute attribution, most important first."""
        scores = np.abs(self.row_attributions).mean(axis=0)
        order = np.argsort(-scores, kind="stable")
        return {self.columns[i]: float(scores[i]) for i in order}


def check_method(method: str, field: str = "method") -> str:
    """`method` resolved (`auto` -> what is installed); InputError naming `field` for an unknown one."""
    if method not in METHODS:
        raise InputError(f"{field}: {method!r} is not a method; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "integrated_gradients" if captum_available() else "permutation"
    return method


def attribute(
    model: LoadedModel, frame: pd.DataFrame, method: str = "auto", steps: int = DEFAULT_STEPS, seed: int = 0
) -> Explanation:
    """Attribute `model`'s predictions on the raw rows of `frame` to its raw feature columns."""
    method = check_method(method)
    if method == "permutation" and len(frame) < 2:
        raise InputError("method: permutation shuffles a column among the rows, so it needs at least 2 rows")
    prediction = model.predict_frame(frame, source="data")
    if method == "integrated_gradients":
        attributions = fold_to_columns(model.preprocessor, _integrated_gradients(model, frame, steps))
    else:
        attributions = _permutation(model, frame, seed)
    columns = [feature.name for feature in model.preprocessor.features]
    return Explanation(method, columns, attributions, list(prediction.labels))


def captum_available() -> bool:
    """True when captum (Integrated Gradients) can be imported."""
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        return False
    return True


def fold_to_columns(preprocessor: FittedPreprocessor, encoded: np.ndarray) -> np.ndarray:
    """Encoded-feature attributions -> raw-column attributions (a one-hot group sums to its column)."""
    widths = [
        len(feature.categories) if isinstance(feature, CategoricalFeature) and feature.encoding == "onehot" else 1
        for feature in preprocessor.features
    ]
    edges = np.cumsum([0, *widths])
    return np.stack([encoded[:, start:end].sum(axis=1) for start, end in itertools.pairwise(edges)], axis=1)


def _integrated_gradients(model: LoadedModel, frame: pd.DataFrame, steps: int) -> np.ndarray:
    from captum.attr import IntegratedGradients

    features = torch.tensor(model.preprocessor.transform(frame, source="data"))
    with torch.no_grad():
        outputs = model.module(features)
    target = outputs.argmax(dim=1) if model.task == "classification" else None
    if target is None and outputs.dim() == 2:
        target = torch.zeros(len(features), dtype=torch.long)
    explainer = IntegratedGradients(model.module)
    attributions = explainer.attribute(features, baselines=torch.zeros_like(features), target=target, n_steps=steps)
    return np.asarray(attributions.detach().numpy(), dtype=np.float64)


def _permutation(model: LoadedModel, frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reference = _outputs(model, frame)
    rows = np.arange(len(frame))
    picked = reference.argmax(axis=1) if model.task == "classification" else np.zeros(len(frame), dtype=int)
    base = reference[rows, picked]
    columns = []
    for feature in model.preprocessor.features:
        shuffled = frame.copy()
        shuffled[feature.name] = rng.permutation(shuffled[feature.name].to_numpy())
        columns.append(base - _outputs(model, shuffled)[rows, picked])
    return np.stack(columns, axis=1)


def _outputs(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    prediction = model.predict_frame(frame, source="data")
    if prediction.probabilities is not None:
        return np.asarray(prediction.probabilities, dtype=np.float64)
    return np.asarray(prediction.values, dtype=np.float64).reshape(len(frame), -1)


__all__ = [
    "DEFAULT_STEPS",
    "METHODS",
    "Explanation",
    "attribute",
    "captum_available",
    "check_method",
    "fold_to_columns",
]
