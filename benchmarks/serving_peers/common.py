"""What every peer of the serving benchmark shares: the model, the v2 request's columns and the v2 answer.

Each peer preprocesses with kubeforge's own fitted preprocessor (the numpy fast path kubeforge uses)
and runs the same TorchScript network; only the serving stack differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kubeforge.preprocessor import FittedPreprocessor


class TabularPredictor:
    """The model directory's network and preprocessor."""

    def __init__(self, directory: Path):
        self.module = torch.jit.load(str(directory / "model.pt"), map_location="cpu")
        self.preprocessor = FittedPreprocessor.load(directory / "preprocessor.json")
        self.classes = self.preprocessor.classes or []

    def features(self, inputs: list[dict[str, Any]]) -> np.ndarray:
        """Preprocessed rows of a v2 request's `inputs` (JSON data)."""
        columns = {
            t["name"]: np.asarray(t["data"], dtype=object if t["datatype"] == "BYTES" else np.float64) for t in inputs
        }
        return self.preprocessor.transform_columns(columns, source="inputs")

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (float32) of preprocessed rows: one forward pass."""
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(features)).numpy()
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)

    def response(self, name: str, request_id: str, probabilities: np.ndarray) -> dict[str, Any]:
        """The v2 infer response for `probabilities`."""
        labels = [str(self.classes[i]) for i in probabilities.argmax(axis=1)]
        return {
            "model_name": name,
            "id": request_id,
            "outputs": [
                {"name": "predictions", "datatype": "BYTES", "shape": [len(labels)], "data": labels},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": list(probabilities.shape),
                    "data": probabilities.ravel().tolist(),
                },
            ],
        }
