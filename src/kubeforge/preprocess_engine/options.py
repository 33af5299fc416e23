"""What every preprocessing engine shares: split fractions, output locations (staged, published all or
none), the result."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kubeforge.artifacts import atomic_output
from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.split_assign import held_out_counts
from kubeforge.preprocessor import FittedPreprocessor, Task
from kubeforge.tabular import TableSchema

SPLITS = ("train", "validation", "test")
MAX_INFERRED_CLASSES = 20


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of rows held out for validation and test; the rest is the training split."""

    validation: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        for name, value in (("validation_fraction", self.validation), ("test_fraction", self.test)):
            if not 0.0 < value < 1.0:
                raise InputError(f"{name} is {value}; it must be between 0 and 1 (exclusive)")
        if self.validation + self.test >= 0.9:
            raise InputError(
                f"validation_fraction + test_fraction is {self.validation + self.test:.2f}; "
                "keep it below 0.9 so the training split has rows"
            )


@dataclass(frozen=True)
class PreprocessOutputs:
    """Where the component's outputs go (local paths or storage URIs)."""

    train: str
    validation: str
    test: str
    preprocessor: str
    statistics: str


@dataclass(frozen=True)
class PreprocessResult:
    """What preprocessing produced: row counts, the schema used and the fitted preprocessor."""

    rows: dict[str, int]
    schema: TableSchema
    preprocessor: FittedPreprocessor
    schema_inferred: bool


def class_size_problem(counts: dict[Any, int], label: str, fractions: SplitFractions) -> InputError | None:
    """The error for classes too small to stratify, or None; `counts` maps class value to rows."""
    needed = max(3, round(1 / min(fractions.validation, fractions.test)))
    rare = {value: count for value, count in counts.items() if count < needed}
    if not rare:
        return None
    shown = listed(f"{value!r} ({count} rows)" for value, count in sorted(rare.items(), key=lambda item: item[1]))
    hint = "add data, merge rare classes, or raise the split fractions"
    if len(counts) > MAX_INFERRED_CLASSES:
        hint += f"; a label with {len(counts)} distinct values may be a regression target: set task='regression'"
    return InputError(
        f"label column '{label}': {len(rare)} class(es) have too few rows for a stratified split "
        f"(need at least {needed} each): {shown}; {hint}"
    )


def check_splittable(class_rows: dict[Any, int], label: str, task: Task, fractions: SplitFractions) -> None:
    """Refuse a table that cannot be split: classes too small to stratify, or a split left empty.

    `class_rows` maps each class (one group for regression) to its rows, as every engine counts them."""
    if task == "classification":
        problem = class_size_problem(class_rows, label, fractions)
        if problem is not None:
            raise problem
    totals = [0, 0, 0]
    for rows in class_rows.values():
        validation, test = held_out_counts(rows, fractions.validation, fractions.test)
        totals = [totals[0] + rows - validation - test, totals[1] + validation, totals[2] + test]
    if 0 in totals:
        raise empty_split_error(totals)


def empty_split_error(split_rows: list[int]) -> InputError:
    """The error for a split with no rows; `split_rows` holds train, validation and test rows in order."""
    sizes = ", ".join(f"{name} {count}" for name, count in zip(SPLITS, split_rows, strict=True))
    return InputError(
        f"cannot split {sum(split_rows)} rows with the requested fractions ({sizes} rows); "
        "every split needs rows: add data or raise the fractions"
    )


@contextlib.contextmanager
def staged_outputs(outputs: PreprocessOutputs) -> Iterator[dict[str, Path]]:
    """Yield a staged local path per output (keyed by `PreprocessOutputs` field); all are published
    only if the block succeeds, none otherwise."""
    with contextlib.ExitStack() as stack:
        yield {
            field.name: stack.enter_context(atomic_output(getattr(outputs, field.name))) for field in fields(outputs)
        }


def write_fitted(staged: dict[str, Path], preprocessor: FittedPreprocessor, report: str) -> None:
    """Write the preprocessor JSON and the statistics report into their staged paths."""
    staged["preprocessor"].write_text(json.dumps(preprocessor.to_json(), indent=2, allow_nan=False))
    staged["statistics"].write_text(report)


__all__ = [
    "MAX_INFERRED_CLASSES",
    "SPLITS",
    "PreprocessOutputs",
    "PreprocessResult",
    "SplitFractions",
    "class_size_problem",
    "staged_outputs",
    "write_fitted",
]
