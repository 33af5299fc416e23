"""The fitted preprocessor: statistics learned on the training split, applied everywhere.

Preprocessing fits it once; training, evaluation and the model server apply the same
JSON artifact, so features are computed identically in every stage (no training/serving
skew). The format is versioned; `FittedPreprocessor.load` rejects versions it cannot read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from kubeforge.artifacts import read_bytes, write_text
from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.feature_columns import numeric_plan, transform_array
from kubeforge.features import (
    CategoricalFeature,
    Encoding,
    Feature,
    ImputeStrategy,
    NumericFeature,
    PreprocessOptions,
    Tally,
    fit_categorical,
    fit_numeric,
    transform_feature,
)
from kubeforge.tabular import TableSchema, categorical_column, numeric_column

FORMAT_NAME = "kubeforge.preprocessor"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 had no category policies (its columns load with policy "error") and no target scaler."""

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


@dataclass(frozen=True)
class FittedPreprocessor:
    """Everything needed to turn raw rows into model inputs and labels into targets.

    `class_weights` (classification, optional) holds one loss weight per entry of `classes`,
    learned on the training split; training applies them with `class_weighting="preprocessor"`.
    `target_scaler` (regression) is the training targets' (mean, standard deviation): the network
    learns standardized targets and `unscale_targets` turns its outputs back into the label's units.
    """

    task: Task
    label: str
    features: list[Feature]
    classes: list[Any] | None = None
    fitted_on_rows: int = 0
    class_weights: list[float] | None = None
    target_scaler: tuple[float, float] | None = None
    version: int = field(default=FORMAT_VERSION)

    @property
    def schema(self) -> TableSchema:
        """The raw input schema this preprocessor expects."""
        return TableSchema(features={f.name: f.kind for f in self.features}, label=self.label)

    @property
    def output_columns(self) -> list[str]:
        """Names of the model-input columns, in order."""
        names: list[str] = []
        for feature in self.features:
            if isinstance(feature, CategoricalFeature) and feature.encoding == "onehot":
                names.extend(f"{feature.name}={category}" for category in feature.categories)
            else:
                names.append(feature.name)
        return names

    def transform(self, frame: pd.DataFrame, source: str = "input", tally: Tally | None = None) -> np.ndarray:
        """Apply the learned statistics to raw rows; returns float32 of shape (rows, outputs).

        `tally`, when given, gains the rows per categorical column whose category had no level of its own.
        """
        missing = [f.name for f in self.features if f.name not in frame.columns]
        if missing:
            raise InputError(f"{source}: missing feature column(s) {', '.join(repr(m) for m in missing)}")
        blocks = [transform_feature(feature, frame[feature.name], source, tally) for feature in self.features]
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)

    def transform_columns(
        self, columns: Mapping[str, np.ndarray], source: str = "input", tally: Tally | None = None
    ) -> np.ndarray:
        """`transform` for one array per column, exactly; numpy only where the column's type allows it.

        Numeric columns already float64/int64 and categorical columns of strings and None skip pandas
        (the model server's per-request path); any other column goes through `transform`'s own code.
        """
        missing = [f.name for f in self.features if f.name not in columns]
        if missing:
            raise InputError(f"{source}: missing feature column(s) {', '.join(repr(m) for m in missing)}")
        fast = numeric_plan(self, self.features).transform(columns, source, tally)
        if fast is not None:
            return fast
        blocks = [transform_array(feature, columns[feature.name], source, tally) for feature in self.features]
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)

    def unknown_category_rows(self, frame: pd.DataFrame) -> dict[str, int]:
        """Rows per categorical column whose value is not a level of its own (missing values are imputed, not counted).

        Under the "infrequent" policy these rows take the reserved level, under "ignore" zeros; columns
        with no such row are left out.
        """
        counts: dict[str, int] = {}
        for feature in self.features:
            if isinstance(feature, CategoricalFeature) and feature.name in frame.columns:
                values = categorical_column(frame[feature.name]).dropna()
                rows = int((~values.isin(feature.categories)).sum())
                if rows:
                    counts[feature.name] = rows
        return counts

    def encode_labels(self, labels: pd.Series, source: str = "input") -> np.ndarray:
        """Map labels to class indices (classification) or float32 targets (regression)."""
        if labels.isna().any():
            rows = labels.index[labels.isna()][:5].tolist()
            raise InputError(
                f"{source}: label column '{self.label}' has {int(labels.isna().sum())} missing value(s) "
                f"(first rows {rows}); drop or fill those rows"
            )
        if self.task == "regression":
            return numeric_column(labels, self.label, source).to_numpy(dtype=np.float32)
        assert self.classes is not None
        index = {_label_key(c): i for i, c in enumerate(self.classes)}
        keys = labels.map(_label_key)
        unknown = ~keys.isin(index.keys())
        if unknown.any():
            value = labels[unknown].iloc[0]
            raise InputError(
                f"{source}: label column '{self.label}' holds {value!r} ({int(unknown.sum())} row(s)), not among "
                f"the trained classes ({listed(self.classes)}); a class missing from the training split cannot be "
                "scored: re-split so that every class is in training"
            )
        return keys.map(index).to_numpy(dtype=np.int64)

    def scale_targets(self, targets: np.ndarray) -> np.ndarray:
        """Regression targets in the label's units -> the standardized values the network learns."""
        if self.target_scaler is None:
            return targets
        mean, std = self.target_scaler
        return ((targets.astype(np.float64) - mean) / std).astype(np.float32)

    def unscale_targets(self, outputs: np.ndarray) -> np.ndarray:
        """The network's regression outputs -> values in the label's units."""
        if self.target_scaler is None:
            return outputs
        mean, std = self.target_scaler
        return (outputs.astype(np.float64) * std + mean).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON document stored as the preprocessor artifact (`class_weights` only when set)."""
        document = {
            "format": FORMAT_NAME,
            "version": self.version,
            "task": self.task,
            "label": self.label,
            "classes": self.classes,
            "fitted_on_rows": self.fitted_on_rows,
            "features": [asdict(feature) for feature in self.features],
            "output_columns": self.output_columns,
        }
        if self.class_weights is not None:
            document["class_weights"] = self.class_weights
        if self.target_scaler is not None:
            document["target_scaler"] = {"mean": self.target_scaler[0], "std": self.target_scaler[1]}
        return document

    def save(self, path: str | Path) -> None:
        """Write the JSON document atomically (a failed write leaves no file)."""
        write_text(str(path), json.dumps(self.to_json(), indent=2, allow_nan=False))

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "preprocessor") -> FittedPreprocessor:
        """Rebuild a preprocessor from its JSON document, checking format and version."""
        if data.get("format") != FORMAT_NAME:
            raise InputError(f"{source}: not a kubeforge preprocessor (format is {data.get('format')!r})")
        version = data.get("version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise InputError(
                f"{source}: preprocessor format version {version} is not supported; "
                f"this kubeforge reads versions {', '.join(map(str, READABLE_VERSIONS))}"
            )
        features: list[Feature] = []
        for entry in data["features"]:
            entry = dict(entry)
            kind = entry.pop("kind")
            features.append(NumericFeature(**entry) if kind == "numeric" else CategoricalFeature(**entry))
        classes, weights = data.get("classes"), data.get("class_weights")
        if weights is not None and (classes is None or len(weights) != len(classes)):
            raise InputError(
                f"{source}: class_weights holds {len(weights)} value(s) for {len(classes or [])} class(es); "
                "re-run preprocessing to write a consistent artifact"
            )
        return cls(
            task=data["task"],
            label=data["label"],
            features=features,
            classes=classes,
            fitted_on_rows=int(data.get("fitted_on_rows", 0)),
            class_weights=None if weights is None else [float(w) for w in weights],
            target_scaler=_target_scaler_from(data.get("target_scaler"), source),
        )

    @classmethod
    def load(cls, path: str | Path) -> FittedPreprocessor:
        """Read a preprocessor artifact from a local path or a storage URI."""
        source = str(path)
        try:
            data = json.loads(read_bytes(source))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: not a kubeforge preprocessor (expected its JSON document)") from exc
        if not isinstance(data, dict):
            raise InputError(f"{source}: not a kubeforge preprocessor (expected a JSON object)")
        return cls.from_json(data, source=source)


def target_scaler(mean: float | None, std: float | None, label: str) -> tuple[float, float]:
    """The (mean, standard deviation) that standardizes a regression target; a constant target keeps std 1."""
    if mean is None or std is None or not math.isfinite(mean):
        raise InputError(f"training split: label column '{label}' has no numeric values to learn a regression from")
    return float(mean), float(std) if std > 0 and math.isfinite(std) else 1.0


def _target_scaler_from(entry: Any, source: str) -> tuple[float, float] | None:
    if entry is None:
        return None
    if not isinstance(entry, dict) or not {"mean", "std"} <= entry.keys() or not float(entry["std"]) > 0:
        raise InputError(f"{source}: target_scaler must be {{'mean': number, 'std': positive number}}")
    return float(entry["mean"]), float(entry["std"])


def fit_preprocessor(
    train: pd.DataFrame, schema: TableSchema, task: Task, options: PreprocessOptions
) -> FittedPreprocessor:
    """Learn imputation, clipping, scaling and encoding statistics from the training split."""
    if task not in TASKS:
        raise InputError(f"task is {task!r}; valid values are {', '.join(TASKS)}")
    features: list[Feature] = []
    for name, kind in schema.features.items():
        column = train[name]
        if kind == "numeric":
            features.append(fit_numeric(name, column, options))
        else:
            counts = categorical_column(column).dropna().value_counts()
            features.append(fit_categorical(name, {str(k): int(v) for k, v in counts.items()}, options))
    classes, scaler = None, None
    if task == "classification":
        classes = sorted((_json_scalar(v) for v in train[schema.label].unique()), key=_label_sort_key)
    else:
        targets = numeric_column(train[schema.label], schema.label, "training split").to_numpy(dtype=np.float64)
        scaler = target_scaler(float(targets.mean()), float(targets.std()), schema.label)
    return FittedPreprocessor(
        task=task,
        label=schema.label,
        features=features,
        classes=classes,
        fitted_on_rows=len(train),
        target_scaler=scaler,
    )


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_key(value: Any) -> str:
    return str(_json_scalar(value))


def _label_sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


__all__ = [
    "TASKS",
    "CategoricalFeature",
    "Encoding",
    "Feature",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "FittedPreprocessor",
    "ImputeStrategy",
    "NumericFeature",
    "PreprocessOptions",
    "Tally",
    "Task",
    "fit_categorical",
    "fit_preprocessor",
    "target_scaler",
]
