"""The Model artifact: one directory that carries everything needed to serve a model.

Layout (version 1)::

    model.pt                TorchScript module: float32 features -> logits / values
    preprocessor.json       the fitted preprocessor (see kubeforge.preprocessor)
    schema.json             the raw input schema: feature columns, their kind, the label
    metrics_history.jsonl   one JSON object per training epoch
    kubeforge_model.json    manifest: format, task, classes, framework versions, training facts

The manifest is written last, so a directory without it is incomplete and is refused.
"""

from __future__ import annotations

import json
import platform
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import kubeforge
from kubeforge.errors import ArtifactError, InputError
from kubeforge.preprocessor import FittedPreprocessor

FORMAT_NAME = "kubeforge.model"
FORMAT_VERSION = 1
MANIFEST = "kubeforge_model.json"
WEIGHTS = "model.pt"
PREPROCESSOR = "preprocessor.json"
SCHEMA = "schema.json"
METRICS_HISTORY = "metrics_history.jsonl"


@contextmanager
def _torchscript_deprecation_silenced() -> Iterator[None]:
    # torch 2.13 marks torch.jit as deprecated; TorchScript is still the portable weight format
    # that KServe's and Vertex's PyTorch servers load, so it stays the artifact format here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def script_module(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """Compile a module in eval mode to TorchScript, the weight format of the Model artifact."""
    module.eval()
    with _torchscript_deprecation_silenced():
        return torch.jit.script(module)


def framework_versions() -> dict[str, str]:
    """Versions of everything that shapes a model's behaviour, recorded in its manifest."""
    return {
        "kubeforge": kubeforge.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def write_model_dir(
    directory: str | Path,
    scripted: torch.jit.ScriptModule,
    preprocessor: FittedPreprocessor,
    metrics_history: Sequence[dict[str, Any]],
    training: dict[str, Any],
) -> Path:
    """Write a complete model directory; the manifest goes last so partial dirs are detectable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_tmp = directory / f".{WEIGHTS}.tmp"
    with _torchscript_deprecation_silenced():
        torch.jit.save(scripted, str(weights_tmp))
    weights_tmp.replace(directory / WEIGHTS)
    _write_json(directory / PREPROCESSOR, preprocessor.to_json())
    _write_json(directory / SCHEMA, preprocessor.schema.to_json())
    _write_text(directory / METRICS_HISTORY, "".join(json.dumps(row) + "\n" for row in metrics_history))
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "task": preprocessor.task,
        "label": preprocessor.label,
        "classes": preprocessor.classes,
        "input_schema": preprocessor.schema.to_json(),
        "output_columns": preprocessor.output_columns,
        "framework": framework_versions(),
        "training": training,
    }
    _write_json(directory / MANIFEST, manifest)
    return directory


@dataclass
class Prediction:
    """Predictions for a batch: class labels and probabilities, or regression values."""

    labels: list[Any]
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None


@dataclass
class LoadedModel:
    """A model directory loaded for inference: TorchScript module plus its preprocessor."""

    name: str
    module: torch.jit.ScriptModule
    preprocessor: FittedPreprocessor
    manifest: dict[str, Any]
    directory: Path
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task(self) -> str:
        """`classification` or `regression`."""
        return str(self.manifest["task"])

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in the order of the model's outputs (classification only)."""
        return self.preprocessor.classes

    def forward(self, features: np.ndarray) -> np.ndarray:
        """Run the network on already-preprocessed float32 features."""
        with torch.inference_mode():
            outputs: np.ndarray = self.module(
                torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            ).numpy()
            return outputs

    def predict_features(self, features: np.ndarray) -> Prediction:
        """Predict from preprocessed features."""
        outputs = self.forward(features)
        if self.task == "regression":
            values = self.preprocessor.unscale_targets(outputs.reshape(-1))
            return Prediction(labels=values.tolist(), values=values)
        probabilities = _softmax(outputs)
        assert self.classes is not None
        classes = np.empty(len(self.classes), dtype=object)
        classes[:] = self.classes
        labels = classes[probabilities.argmax(axis=1)].tolist()
        return Prediction(labels=labels, probabilities=probabilities)

    def predict_frame(self, frame: pd.DataFrame, source: str = "input") -> Prediction:
        """Preprocess raw rows with the model's own preprocessor, then predict."""
        return self.predict_features(self.preprocessor.transform(frame, source=source))


def load_model(directory: str | Path, name: str | None = None) -> LoadedModel:
    """Load a local model directory, refusing incomplete or foreign directories."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(
            f"{directory} is not a complete kubeforge model: {MANIFEST} is missing "
            "(was training interrupted? re-run the training step)"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format {manifest.get('format')!r} version {manifest.get('version')!r} "
            f"is not readable by this kubeforge (expects {FORMAT_NAME} version {FORMAT_VERSION})"
        )
    preprocessor = FittedPreprocessor.load(directory / PREPROCESSOR)
    with _torchscript_deprecation_silenced():
        module = torch.jit.load(str(directory / WEIGHTS), map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()
    history_path = directory / METRICS_HISTORY
    history = [json.loads(line) for line in history_path.read_text().splitlines() if line.strip()]
    return LoadedModel(
        name=name or directory.name,
        module=module,
        preprocessor=preprocessor,
        manifest=manifest,
        directory=directory,
        history=history,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, allow_nan=False))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def require_model_task(model: LoadedModel, task: str, parameter: str) -> None:
    """Raise an InputError when a model of the wrong task is passed to `parameter`."""
    if model.task != task:
        raise InputError(f"{parameter}: model {model.directory} is a {model.task} model; a {task} model is needed")


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LoadedModel",
    "Prediction",
    "framework_versions",
    "load_model",
    "require_model_task",
    "script_module",
    "write_model_dir",
]
