"""Which task a label column calls for: inferred when `task` is empty, checked when it is given.

A text label is a classification target. A numeric label is a regression target when it holds
fractional values or more than `MAX_INFERRED_CLASSES` distinct values, else a classification
target. The choice and its reason go into the statistics report; a given task that contradicts the
label is one line naming the `task` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.options import MAX_INFERRED_CLASSES
from kubeforge.preprocessor import TASKS, Task


@dataclass(frozen=True)
class TaskChoice:
    """The task used and why (`reason` is a sentence for the statistics report)."""

    task: Task
    reason: str


def choose_task(path: Path, label: str, task: str, shown: str) -> TaskChoice:
    """The task for the label column of the table at `path`: `task` when given (and consistent), else inferred.

    When the label column cannot be read here (absent, unreadable), the given task or classification
    is returned and the engine reports the problem in its own words. `shown` names the input in errors.
    """
    if task not in ("", *TASKS):
        raise InputError(f"task is {task!r}; valid values are {', '.join(TASKS)}, or empty to infer it from the label")
    labels = _label_values(path, label)
    if labels is None:
        return TaskChoice(task or "classification", "given" if task else "default (the label could not be read)")  # type: ignore[arg-type]
    inferred = _infer(labels, label)
    if not task:
        return inferred
    if task == "regression" and inferred.task == "classification" and not _is_numeric(labels):
        text = labels[pd.to_numeric(labels, errors="coerce").isna()].drop_duplicates()
        raise InputError(
            f"input file {shown}: task is 'regression' but label column '{label}' holds text "
            f"({listed(map(repr, text))}); set task='classification', or leave task empty to infer it"
        )
    if task == "classification" and inferred.task == "regression" and _fractional(labels):
        raise InputError(
            f"input file {shown}: task is 'classification' but label column '{label}' holds "
            f"{labels.nunique()} distinct numbers with fractions ({listed(labels.drop_duplicates())}); "
            "set task='regression', or leave task empty to infer it"
        )
    return TaskChoice(task, "given")  # type: ignore[arg-type]


def _infer(labels: pd.Series, label: str) -> TaskChoice:
    distinct = int(labels.nunique())
    if not _is_numeric(labels):
        return TaskChoice("classification", f"inferred: label `{label}` holds text ({distinct} distinct values)")
    if _fractional(labels):
        return TaskChoice("regression", f"inferred: label `{label}` is numeric with fractional values")
    if distinct > MAX_INFERRED_CLASSES:
        return TaskChoice(
            "regression",
            f"inferred: label `{label}` is numeric with {distinct} distinct values (more than {MAX_INFERRED_CLASSES})",
        )
    return TaskChoice(
        "classification",
        f"inferred: label `{label}` has {distinct} distinct whole numbers ({MAX_INFERRED_CLASSES} or fewer)",
    )


def _is_numeric(labels: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)


def _fractional(labels: pd.Series) -> bool:
    if not _is_numeric(labels):
        return False
    values = labels.astype("float64")
    return bool((values != values.round()).any())


def _label_values(path: Path, label: str) -> pd.Series | None:
    """The label column's non-missing values, or None when it cannot be read."""
    try:
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq") or _starts_with_parquet_magic(path):
            column = pq.read_table(path, columns=[label]).column(0).to_pandas()
        else:
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            column = pd.read_csv(path, sep=separator, usecols=[label])[label]
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    values: pd.Series = column.dropna()
    return values


def _starts_with_parquet_magic(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


__all__ = ["MAX_INFERRED_CLASSES", "TaskChoice", "choose_task"]
