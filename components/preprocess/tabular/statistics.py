"""Data statistics for the preprocessing report: a Markdown document per run."""

from __future__ import annotations

import pandas as pd

from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor, NumericFeature


def describe_splits(
    splits: dict[str, pd.DataFrame], preprocessor: FittedPreprocessor, source: str, schema_inferred: bool
) -> str:
    """Render row counts, label balance, per-column statistics and learned parameters as Markdown."""
    train = splits["train"]
    lines = [
        "# Data statistics",
        "",
        f"Source: `{source}`; schema {'inferred' if schema_inferred else 'declared'}; "
        f"label `{preprocessor.label}` ({preprocessor.task}).",
        "",
        "| split | rows |",
        "|---|---|",
        *(f"| {name} | {len(rows)} |" for name, rows in splits.items()),
        "",
    ]
    if preprocessor.task == "classification":
        lines += _label_balance(splits, preprocessor.label)
    lines += ["## Features (training split)", ""]
    lines += ["| column | kind | missing | statistics | learned |", "|---|---|---|---|---|"]
    for feature in preprocessor.features:
        column = train[feature.name]
        missing = f"{column.isna().mean():.1%}"
        lines.append(
            f"| {feature.name} | {feature.kind} | {missing} | {_column_stats(column, feature)} | {_learned(feature)} |"
        )
    return "\n".join(lines) + "\n"


def _label_balance(splits: dict[str, pd.DataFrame], label: str) -> list[str]:
    classes = sorted(splits["train"][label].unique(), key=str)
    header = "| split | " + " | ".join(str(c) for c in classes) + " |"
    lines = ["## Label balance", "", header, "|---|" + "---|" * len(classes)]
    for name, rows in splits.items():
        shares = rows[label].value_counts(normalize=True)
        lines.append(f"| {name} | " + " | ".join(f"{shares.get(c, 0.0):.1%}" for c in classes) + " |")
    return [*lines, ""]


def _column_stats(column: pd.Series, feature: NumericFeature | CategoricalFeature) -> str:
    if isinstance(feature, NumericFeature):
        return f"mean {column.mean():.4g}, std {column.std():.4g}, min {column.min():.4g}, max {column.max():.4g}"
    top = column.value_counts().head(3)
    return f"{column.nunique()} categories; top: " + ", ".join(f"{k} ({v})" for k, v in top.items())


def _learned(feature: NumericFeature | CategoricalFeature) -> str:
    if isinstance(feature, NumericFeature):
        return (
            f"impute {feature.impute:.4g}, clip [{feature.clip_low:.4g}, {feature.clip_high:.4g}], "
            f"scale ({feature.mean:.4g}, {feature.std:.4g})"
        )
    return f"impute {feature.impute!r}, {feature.encoding} over {len(feature.categories)} categories"


__all__ = ["describe_splits"]
