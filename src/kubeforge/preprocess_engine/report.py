"""Data statistics for the preprocessing report: a Markdown document per run.

Rendered from `SplitStatistics`, which every backend (pandas, DuckDB, Spark) computes the same way.
"""

from __future__ import annotations

from kubeforge.preprocess_engine.summary import ColumnSummary, SplitStatistics
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor, NumericFeature


def describe_splits(
    statistics: SplitStatistics,
    preprocessor: FittedPreprocessor,
    source: str,
    schema_inferred: bool,
    task_reason: str = "given",
) -> str:
    """Render row counts, label balance, per-column statistics and learned parameters as Markdown."""
    lines = [
        "# Data statistics",
        "",
        f"Source: `{source}`; schema {'inferred' if schema_inferred else 'declared'}; "
        f"label `{preprocessor.label}` ({preprocessor.task}: {task_reason}).",
        "",
        "| split | rows |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in statistics.rows.items()),
        "",
    ]
    if statistics.label_counts is not None:
        lines += _label_balance(statistics.label_counts, statistics.rows)
    if preprocessor.class_weights is not None and preprocessor.classes is not None:
        weights = zip(preprocessor.classes, preprocessor.class_weights, strict=True)
        lines += ["Class weights (training loss): " + ", ".join(f"{c}: {w:.4g}" for c, w in weights) + ".", ""]
    lines += ["## Features (training split)", ""]
    lines += ["| column | kind | missing | statistics | learned |", "|---|---|---|---|---|"]
    for feature, column in zip(preprocessor.features, statistics.columns, strict=True):
        lines.append(
            f"| {feature.name} | {feature.kind} | {column.missing_share:.1%} | {_column_stats(column)} "
            f"| {_learned(feature)} |"
        )
    return "\n".join(lines) + "\n"


def _label_balance(label_counts: dict[str, dict[str, int]], rows: dict[str, int]) -> list[str]:
    classes = sorted(label_counts["train"])
    header = "| split | " + " | ".join(classes) + " |"
    lines = ["## Label balance", "", header, "|---|" + "---|" * len(classes)]
    for name, counts in label_counts.items():
        total = max(rows[name], 1)
        lines.append(f"| {name} | " + " | ".join(f"{counts.get(c, 0) / total:.1%}" for c in classes) + " |")
    return [*lines, ""]


def _column_stats(column: ColumnSummary) -> str:
    if column.kind == "numeric":
        return f"mean {column.mean:.4g}, std {column.std:.4g}, min {column.minimum:.4g}, max {column.maximum:.4g}"
    return f"{column.distinct} categories; top: " + ", ".join(f"{k} ({v})" for k, v in column.top)


def _learned(feature: NumericFeature | CategoricalFeature) -> str:
    if isinstance(feature, NumericFeature):
        return (
            f"impute {feature.impute:.4g}, clip [{feature.clip_low:.4g}, {feature.clip_high:.4g}], "
            f"scale ({feature.mean:.4g}, {feature.std:.4g})"
        )
    learned = f"impute {feature.impute!r}, {feature.encoding} over {len(feature.categories)} levels; {feature.policy}"
    if feature.folded_categories:
        into = "the reserved level" if feature.policy == "infrequent" else "zeros"
        learned += f" ({feature.folded_categories} rare categories, {feature.folded_rows} rows, into {into})"
    return learned


__all__ = ["describe_splits"]
