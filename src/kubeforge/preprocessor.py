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
from kubeforge.categories import (
    CategoryPolicy,
    check_policy,
    kept_categories,
    listed,
    one_hot,
    resolve_unknown,
)
from kubeforge.errors import InputError
from kubeforge.tabular import TableSchema, categorical_column, numeric_column

FORMAT_NAME = "kubeforge.preprocessor"
FORMAT_VERSION = 1

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
ImputeStrategy = Literal["mean", "median"]
Encoding = Literal["onehot", "ordinal"]


@dataclass(frozen=True)
class PreprocessOptions:
    """How to fit: imputation, outlier clipping quantiles, categorical encoding and category policies.

    `unknown_categories` is every categorical column's policy for rare and unseen categories
    (`kubeforge.categories`), `column_policies` overrides it per column; `min_category_rows` and
    `max_categories` (0: no limit) say which training categories are kept as levels of their own.
    """

    numeric_impute: ImputeStrategy = "median"
    clip_quantiles: tuple[float, float] | None = (0.005, 0.995)
    encoding: Encoding = "onehot"
    unknown_categories: CategoryPolicy = "infrequent"
    column_policies: Mapping[str, CategoryPolicy] = field(default_factory=dict)
    min_category_rows: int = 5
    max_categories: int = 50

    def policy_for(self, column: str) -> CategoryPolicy:
        """The category policy of `column`: its own override, else `unknown_categories`."""
        return self.column_policies.get(column, self.unknown_categories)

    def __post_init__(self) -> None:
        check_policy(self.unknown_categories, "unknown_categories")
        for column, policy in self.column_policies.items():
            check_policy(policy, f"unknown_categories_by_column[{column!r}]")
        if self.min_category_rows < 1:
            raise InputError(f"min_category_rows is {self.min_category_rows}; give 1 or more (1 keeps every category)")
        if self.max_categories < 0:
            raise InputError(f"max_categories is {self.max_categories}; give 0 (no limit) or more")
        if self.numeric_impute not in ("mean", "median"):
            raise InputError(f"numeric_impute is {self.numeric_impute!r}; valid values are mean, median")
        if self.encoding not in ("onehot", "ordinal"):
            raise InputError(f"encoding is {self.encoding!r}; valid values are onehot, ordinal")
        if self.clip_quantiles is not None:
            low, high = self.clip_quantiles
            if not 0.0 <= low < high <= 1.0:
                raise InputError(f"clip_quantiles {self.clip_quantiles}: need 0 <= low < high <= 1")


@dataclass(frozen=True)
class NumericFeature:
    """A numeric column: imputed, clipped to learned bounds, then standardized."""

    name: str
    impute: float
    clip_low: float
    clip_high: float
    mean: float
    std: float
    kind: Literal["numeric"] = "numeric"


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical column: imputed with its most frequent value, then encoded.

    `policy` says what an unknown category becomes (`kubeforge.categories`; "error" for artifacts
    written before policies existed); `folded_categories` and `folded_rows` count the training
    categories (and their rows) that the policy folded into the reserved level or into zeros.
    """

    name: str
    impute: str
    categories: list[str]
    encoding: Encoding
    kind: Literal["categorical"] = "categorical"
    policy: CategoryPolicy = "error"
    folded_categories: int = 0
    folded_rows: int = 0


Feature = NumericFeature | CategoricalFeature
Tally = dict[str, int]
"""Rows per categorical column whose category had no level of its own, filled in by `transform(tally=...)`."""


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
        blocks = [_transform_feature(feature, frame[feature.name], source, tally) for feature in self.features]
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
        fast = _numeric_plan(self).transform(columns, source, tally)
        if fast is not None:
            return fast
        blocks = [_transform_array(feature, columns[feature.name], source, tally) for feature in self.features]
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
        if data.get("version") != FORMAT_VERSION:
            raise InputError(
                f"{source}: preprocessor format version {data.get('version')} is not supported; "
                f"this kubeforge reads version {FORMAT_VERSION}"
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
            features.append(_fit_numeric(name, column, options))
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


def _fit_numeric(name: str, column: pd.Series, options: PreprocessOptions) -> NumericFeature:
    values = column.dropna().to_numpy(dtype=np.float64)
    if values.size == 0:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    impute = float(np.mean(values) if options.numeric_impute == "mean" else np.median(values))
    if options.clip_quantiles is None:
        low, high = float(values.min()), float(values.max())
    else:
        low, high = (float(q) for q in np.quantile(values, options.clip_quantiles))
    filled = np.clip(np.where(np.isnan(column.to_numpy(dtype=np.float64)), impute, column), low, high)
    std = float(filled.std())
    return NumericFeature(
        name=name,
        impute=impute,
        clip_low=low,
        clip_high=high,
        mean=float(filled.mean()),
        std=std if std > 0 and math.isfinite(std) else 1.0,
    )


def fit_categorical(name: str, counts: Mapping[str, int], options: PreprocessOptions) -> CategoricalFeature:
    """The fitted categorical feature from the training split's non-missing category counts (every engine)."""
    policy = options.policy_for(name)
    kept = kept_categories(name, counts, policy, options.min_category_rows, options.max_categories)
    return CategoricalFeature(
        name=name,
        impute=kept.impute,
        categories=kept.categories,
        encoding=options.encoding,
        policy=policy,
        folded_categories=kept.folded_categories,
        folded_rows=kept.folded_rows,
    )


def _transform_feature(feature: Feature, column: pd.Series, source: str, tally: Tally | None = None) -> np.ndarray:
    if isinstance(feature, NumericFeature):
        values = numeric_column(column, feature.name, source).to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), feature.impute, values)
        values = np.clip(values, feature.clip_low, feature.clip_high)
        scaled: np.ndarray = ((values - feature.mean) / feature.std).reshape(-1, 1)
        return scaled
    text = categorical_column(column).fillna(feature.impute)
    codes = pd.Index(feature.categories).get_indexer(pd.Index(text))
    if tally is not None and (unknown := int((codes < 0).sum())):
        tally[feature.name] = tally.get(feature.name, 0) + unknown
    codes = resolve_unknown(codes, feature.policy, feature.categories, feature.name, source, lambda row: text.iloc[row])
    return _encoded(feature, codes)


def _encoded(feature: CategoricalFeature, codes: np.ndarray) -> np.ndarray:
    """The feature's output block from its level codes (-1: an ignored category)."""
    if feature.encoding == "ordinal":
        return codes.astype(np.float64).reshape(-1, 1)
    return one_hot(codes, len(feature.categories))


@dataclass(frozen=True)
class _NumericPlan:
    """Where each feature lands in the output, and the numeric features' statistics as arrays.

    All float/int columns are transformed in one pass with the same elementwise float64
    operations as `_transform_array` (so exactly the same values); the categorical ones still
    take `_transform_array`, written into their own output columns.
    """

    numeric: list[str]
    positions: np.ndarray
    statistics: tuple[np.ndarray, ...]  # impute, clip_low, clip_high, mean, std
    categorical: list[tuple[CategoricalFeature, int, int]]  # feature, first output column, width
    width: int

    def transform(self, columns: Mapping[str, np.ndarray], source: str, tally: Tally | None) -> np.ndarray | None:
        """The model input, or None when a numeric column is not a 1-d float/int array of the common length."""
        arrays = [columns[name] for name in self.numeric]
        layouts = {(a.dtype.kind, a.shape) for a in arrays}
        if len({shape for _, shape in layouts}) != 1 or any(k not in "fi" or len(s) != 1 for k, s in layouts):
            return None  # no numeric feature, or a column the per-column path must handle
        rows = len(arrays[0])
        impute, low, high, mean, std = self.statistics
        numbers = np.concatenate(arrays).astype(np.float64, copy=False).reshape(len(arrays), rows).T
        numbers = np.where(np.isnan(numbers), impute, numbers)
        out = np.empty((rows, self.width), dtype=np.float32)
        out[:, self.positions] = (np.clip(numbers, low, high) - mean) / std
        for feature, start, width in self.categorical:
            block = _transform_array(feature, columns[feature.name], source, tally)
            if block.shape[0] != out.shape[0]:
                return None
            out[:, start : start + width] = block
        return out


_PLANS: dict[int, tuple[FittedPreprocessor, list[Feature], _NumericPlan]] = {}


def _numeric_plan(preprocessor: FittedPreprocessor) -> _NumericPlan:
    """The plan of `preprocessor`, cached while it and its feature list are the same objects."""
    cached = _PLANS.get(id(preprocessor))
    if cached is not None and cached[0] is preprocessor and cached[1] == preprocessor.features:
        return cached[2]
    numeric: list[NumericFeature] = []
    positions: list[int] = []
    categorical: list[tuple[CategoricalFeature, int, int]] = []
    width = 0
    for feature in preprocessor.features:
        if isinstance(feature, NumericFeature):
            numeric.append(feature)
            positions.append(width)
            width += 1
        else:
            size = len(feature.categories) if feature.encoding == "onehot" else 1
            categorical.append((feature, width, size))
            width += size
    statistics = tuple(
        np.array([getattr(f, key) for f in numeric], dtype=np.float64)
        for key in ("impute", "clip_low", "clip_high", "mean", "std")
    )
    plan = _NumericPlan([f.name for f in numeric], np.array(positions, dtype=np.intp), statistics, categorical, width)
    if len(_PLANS) >= _CATEGORY_INDEX_LIMIT:
        _PLANS.clear()
    _PLANS[id(preprocessor)] = (preprocessor, list(preprocessor.features), plan)
    return plan


def _transform_array(feature: Feature, values: np.ndarray, source: str, tally: Tally | None = None) -> np.ndarray:
    if isinstance(feature, NumericFeature):
        if values.dtype.kind not in "fi":
            return _transform_feature(feature, pd.Series(values), source, tally)
        numbers = values.astype(np.float64)
        numbers = np.where(np.isnan(numbers), feature.impute, numbers)
        numbers = np.clip(numbers, feature.clip_low, feature.clip_high)
        scaled: np.ndarray = ((numbers - feature.mean) / feature.std).reshape(-1, 1)
        return scaled
    if values.dtype != object or not all(type(v) is str or v is None for v in values.tolist()):
        return _transform_feature(feature, pd.Series(values), source, tally)
    index = _category_index(feature)
    unknown = len(feature.categories)
    codes = np.fromiter(
        (index.get(feature.impute if v is None else v, unknown) for v in values.tolist()), np.intp, len(values)
    )
    if (codes == unknown).any():  # the pandas path resolves unknown categories, so both paths agree
        return _transform_feature(feature, pd.Series(values), source, tally)
    return _encoded(feature, codes)


_CATEGORY_INDEX_LIMIT = 4096
_CATEGORY_INDEXES: dict[int, tuple[CategoricalFeature, dict[str, int]]] = {}


def _category_index(feature: CategoricalFeature) -> dict[str, int]:
    """Category -> code, cached per feature object (features are frozen; the entry pins the object)."""
    cached = _CATEGORY_INDEXES.get(id(feature))
    if cached is None or cached[0] is not feature:
        if len(_CATEGORY_INDEXES) >= _CATEGORY_INDEX_LIMIT:
            _CATEGORY_INDEXES.clear()
        cached = (feature, {category: code for code, category in enumerate(feature.categories)})
        _CATEGORY_INDEXES[id(feature)] = cached
    return cached[1]


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
    "FittedPreprocessor",
    "NumericFeature",
    "PreprocessOptions",
    "Task",
    "fit_categorical",
    "fit_preprocessor",
    "target_scaler",
]
