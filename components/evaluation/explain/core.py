"""`evaluation/explain`: which raw columns drive a model's predictions, on a sample of rows; no kfp import.

The attributions come from `kubeforge.explain` (Integrated Gradients with captum, permutation importance
as the model-agnostic fallback, both folded back to raw columns); this module samples the rows and
publishes the bar chart, the ranked table and the per-row explanations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from kubeforge.artifacts import atomic_output_dir
from kubeforge.errors import InputError
from kubeforge.explain import Explanation, attribute, check_method
from kubeforge.model_format import load_model
from kubeforge.tabular import read_table

PLOT_FILE = "importance.png"
TABLE_FILE = "importance.md"
ROWS_FILE = "rows.jsonl"


def explain(
    model_dir: str | Path, data: str | Path, sample_rows: int = 200, method: str = "auto", seed: int = 0
) -> Explanation:
    """Explain the model at `model_dir` on up to `sample_rows` rows of the table at `data`."""
    method = check_method(method)
    if sample_rows < 1:
        raise InputError(f"sample_rows is {sample_rows}; give at least 1")
    model = load_model(model_dir)
    frame = read_table(data)
    if frame.empty:
        raise InputError(f"data: {data} has no rows to explain")
    frame = frame.sample(n=min(sample_rows, len(frame)), random_state=seed).reset_index(drop=True)
    return attribute(model, frame, method=method, seed=seed)


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


__all__ = ["PLOT_FILE", "ROWS_FILE", "TABLE_FILE", "explain", "publish"]
