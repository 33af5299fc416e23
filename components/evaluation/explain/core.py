"""`evaluation/explain`: which raw columns drive a model's predictions, on a sample of rows; no kfp import.

Two methods:

- `integrated_gradients` (captum): attributions of the predicted class's logit (or the regression
  value) to each encoded feature, against an all-zeros baseline (the training mean of every
  standardized column, no category), then folded back to raw columns through the fitted
  preprocessor: the columns of a one-hot group sum to their raw column.
- `permutation`: the model-agnostic fallback. Each raw column is shuffled in turn; a row's
  attribution is how much its predicted-class probability (or value) moves, and the global
  importance is the mean absolute move.

`auto` picks Integrated Gradients when captum is installed, else permutation.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from kubeforge.artifacts import atomic_output_dir
from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, load_model
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor
from kubeforge.tabular import read_table

METHODS = ("auto", "integrated_gradients", "permutation")
IG_STEPS = 32
PLOT_FILE = "importance.png"
TABLE_FILE = "importance.md"
ROWS_FILE = "rows.jsonl"


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


def explain(
    model_dir: str | Path, data: str | Path, sample_rows: int = 200, method: str = "auto", seed: int = 0
) -> Explanation:
    """Explain the model at `model_dir` on up to `sample_rows` rows of the table at `data`."""
    if method not in METHODS:
        raise InputError(f"method is {method!r}; choose one of {', '.join(METHODS)}")
    if sample_rows < 1:
        raise InputError(f"sample_rows is {sample_rows}; give at least 1")
    model = load_model(model_dir)
    frame = read_table(data)
    if frame.empty:
        raise InputError(f"data: {data} has no rows to explain")
    frame = frame.sample(n=min(sample_rows, len(frame)), random_state=seed).reset_index(drop=True)
    prediction = model.predict_frame(frame, source="data")
    if method == "auto":
        method = "integrated_gradients" if _captum_available() else "permutation"
    if method == "integrated_gradients":
        attributions = fold_to_columns(model.preprocessor, _integrated_gradients(model, frame))
    else:
        attributions = _permutation(model, frame, seed)
    columns = [feature.name for feature in model.preprocessor.features]
    return Explanation(method, columns, attributions, list(prediction.labels))


def publish(explanation: Explanation, output_dir: str | Path, top: int = 3) -> None:
    """Write the bar chart, the Markdown table and one JSON line per row (its `top` columns) to `output_dir`."""
    with atomic_output_dir(str(output_dir)) as folder:
        _plot(explanation, folder / PLOT_FILE)
        lines = ["| rank | column | mean abs attribution |", "|---:|---|---:|"]
        lines += [
            f"| {rank} | {name} | {score:.6g} |" for rank, (name, score) in enumerate(explanation.importance.items(), 1)
        ]
        (folder / TABLE_FILE).write_text(f"Method: {explanation.method}\n\n" + "\n".join(lines) + "\n")
        with (folder / ROWS_FILE).open("w") as rows:
            for index, values in enumerate(explanation.row_attributions):
                order = np.argsort(-np.abs(values), kind="stable")[:top]
                record = {
                    "row": index,
                    "prediction": _json_value(explanation.predictions[index]),
                    "attributions": {explanation.columns[i]: float(values[i]) for i in order},
                }
                rows.write(json.dumps(record) + "\n")


def _captum_available() -> bool:
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        return False
    return True


def _integrated_gradients(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    from captum.attr import IntegratedGradients

    features = torch.tensor(model.preprocessor.transform(frame, source="data"))
    with torch.no_grad():
        outputs = model.module(features)
    target = outputs.argmax(dim=1) if model.task == "classification" else None
    if target is None and outputs.dim() == 2:
        target = torch.zeros(len(features), dtype=torch.long)
    explainer = IntegratedGradients(model.module)
    attributions = explainer.attribute(features, baselines=torch.zeros_like(features), target=target, n_steps=IG_STEPS)
    return np.asarray(attributions.detach().numpy(), dtype=np.float64)


def fold_to_columns(preprocessor: FittedPreprocessor, encoded: np.ndarray) -> np.ndarray:
    """Encoded-feature attributions -> raw-column attributions (a one-hot group sums to its column)."""
    widths = [
        len(feature.categories) if isinstance(feature, CategoricalFeature) and feature.encoding == "onehot" else 1
        for feature in preprocessor.features
    ]
    edges = np.cumsum([0, *widths])
    return np.stack([encoded[:, start:end].sum(axis=1) for start, end in itertools.pairwise(edges)], axis=1)


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


def _plot(explanation: Explanation, path: Path) -> None:
    names = list(explanation.importance)[::-1]
    scores = [explanation.importance[name] for name in names]
    figure = Figure(figsize=(7, 0.4 * len(names) + 1.2))
    axes = figure.subplots()
    axes.barh(names, scores, color="tab:blue")
    axes.set(xlabel="mean |attribution|", title=f"Feature importance ({explanation.method.replace('_', ' ')})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _json_value(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["METHODS", "Explanation", "explain", "fold_to_columns", "publish"]
