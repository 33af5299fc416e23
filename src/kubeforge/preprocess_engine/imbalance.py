"""Class imbalance in tabular preprocessing: resampling the training split, and balanced class weights.

Both touch the training split only; validation and test keep the data's own class balance, so
their metrics describe the data the model will meet. Both are refused for regression.

Resampling (``sampling``) is deterministic and every backend computes it alike. Within each
class, the training rows are ranked by a key of their row number (the split's key function,
`kubeforge.preprocess_engine.split_assign`, under a salted seed). With ``target`` rows wanted per
class (the smallest class's count for ``undersample``, the largest for ``oversample``) and ``n``
training rows in a class, the row of rank ``r`` is written ``target // n + (1 if r < target % n
else 0)`` times: undersampling keeps the ``target`` lowest-ranked rows of every larger class,
oversampling repeats every row of a smaller class and one more copy of its ``target % n``
lowest-ranked rows. Rows keep input order, copies next to their original. The preprocessor is
fitted on the training split as written, the rows the model trains on.

Class weights (``class_weights="balanced"``) are `kubeforge.class_weights.balanced_class_weights`
of the training split as written (after any resampling), stored in the fitted preprocessor for
training's ``class_weighting="preprocessor"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from kubeforge.class_weights import balanced_class_weights
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.duckdb_source import literal
from kubeforge.preprocess_engine.options import SplitFractions
from kubeforge.preprocess_engine.split_assign import held_out_counts, split_key_sql, split_keys
from kubeforge.preprocessor import FittedPreprocessor, Task

Sampling = Literal["none", "undersample", "oversample"]
ClassWeights = Literal["none", "balanced"]
SAMPLINGS: tuple[Sampling, ...] = ("none", "undersample", "oversample")
CLASS_WEIGHTS: tuple[ClassWeights, ...] = ("none", "balanced")
_SAMPLING_SALT = 0x2545F491  # sampling keys differ from the split's keys for the same seed


@dataclass(frozen=True)
class SamplingPlan:
    """One resampling of a training split: `target` rows per class, rows ranked by keys of `key_seed`."""

    target: int
    key_seed: int

    def copies(self, ranks: np.ndarray, class_rows: np.ndarray) -> np.ndarray:
        """How many times each row is written, from its rank within its class and its class's size."""
        counts: np.ndarray = self.target // class_rows + (ranks < self.target % class_rows)
        return counts.astype(np.int64)

    def resample_frame(self, train: pd.DataFrame, label: str) -> pd.DataFrame:
        """The pandas backend: `train` (indexed by row number) resampled, in row order."""
        groups, _ = pd.factorize(train[label])
        order = np.lexsort((split_keys(train.index.to_numpy(), self.key_seed), groups))
        ordered_groups = groups[order]
        ranks = np.empty(len(train), dtype=np.int64)
        ranks[order] = np.arange(len(train)) - np.searchsorted(ordered_groups, ordered_groups, side="left")
        copies = self.copies(ranks, np.bincount(groups)[groups])
        return train.iloc[np.repeat(np.arange(len(train)), copies)]

    def resample_sql(self, rows: str, row: str, label: str) -> str:
        """The spark backend: the resampled rows of the relation `rows` (unordered, same columns).

        `row` names the row-number column and `label` the (quoted) label column of `rows`.
        """
        key = split_key_sql(row, self.key_seed, "spark")
        copies = (
            f"(CAST(floor({self.target} / __class_rows) AS BIGINT) "
            f"+ CASE WHEN __rank < {self.target} % __class_rows THEN 1 ELSE 0 END)"
        )
        return (
            f"SELECT * EXCEPT (__rank, __class_rows, __copies, __copy) FROM (SELECT *, "
            f"explode(sequence(1, __copies)) AS __copy FROM (SELECT *, {copies} AS __copies FROM (SELECT *, "
            f"row_number() OVER (PARTITION BY {label} ORDER BY {key}) - 1 AS __rank, "
            f"count(*) OVER (PARTITION BY {label}) AS __class_rows FROM {rows})) WHERE __copies > 0)"
        )

    def duckdb_query(self, connection: duckdb.DuckDBPyConnection, rows: str, row: str, label: str) -> str:
        """The duckdb backend: a streaming query of the resampled rows of `rows`, in row order, without `row`.

        One narrow pass finds, per class, its row count and the key of its last extra copy; the
        returned query then filters or repeats rows with a CASE on the class, no sort or window.
        """
        key = split_key_sql(row, self.key_seed, "duckdb")
        group = f"CAST({label} AS VARCHAR)"
        classes = connection.sql(
            f"SELECT grp, any_value(n), coalesce(max(key) FILTER (WHERE rank < {self.target} % n), -1) "
            f"FROM (SELECT grp, key, row_number() OVER (PARTITION BY grp ORDER BY key) - 1 AS rank, "
            f"count(*) OVER (PARTITION BY grp) AS n FROM (SELECT {group} AS grp, {key} AS key FROM {rows})) "
            "GROUP BY grp"
        ).fetchall()
        cases = " ".join(
            f"WHEN {literal(grp)} THEN {self.target // n} + CASE WHEN {key} <= {last} THEN 1 ELSE 0 END"
            for grp, n, last in classes
        )
        return (
            f"SELECT * EXCLUDE ({row}, __copies, __copy) FROM (SELECT *, unnest(range(__copies)) AS __copy "
            f"FROM (SELECT *, CASE {group} {cases} END AS __copies FROM {rows}) WHERE __copies > 0)"
        )


@dataclass(frozen=True)
class ClassBalance:
    """How preprocessing treats class imbalance; the defaults change nothing."""

    sampling: Sampling = "none"
    class_weights: ClassWeights = "none"

    def __post_init__(self) -> None:
        for name, valid in (("sampling", SAMPLINGS), ("class_weights", CLASS_WEIGHTS)):
            if getattr(self, name) not in valid:
                raise InputError(f"{name} is {getattr(self, name)!r}; valid values are {', '.join(valid)}")

    def check_task(self, task: Task) -> None:
        """Refuse any option for a task other than classification, naming the field."""
        if task == "classification":
            return
        for name in ("sampling", "class_weights"):
            if getattr(self, name) != "none":
                raise InputError(
                    f"{name} is {getattr(self, name)!r} but task is {task!r}; class-imbalance options apply "
                    f"to classification only: set {name}='none'"
                )

    def plan(self, train_class_rows: Iterable[int], seed: int) -> SamplingPlan | None:
        """The resampling of a training split with these rows per class; None when `sampling` is none."""
        if self.sampling == "none":
            return None
        sizes = list(train_class_rows)
        target = min(sizes) if self.sampling == "undersample" else max(sizes)
        return SamplingPlan(target=int(target), key_seed=seed ^ _SAMPLING_SALT)

    def weigh(self, preprocessor: FittedPreprocessor, labels: Iterable[pd.Series], source: str) -> FittedPreprocessor:
        """`preprocessor` with balanced class weights counted over `labels` (the training split's label
        column, in one or more parts); unchanged when `class_weights` is none."""
        if self.class_weights == "none":
            return preprocessor
        classes = preprocessor.classes or []
        counts = np.zeros(len(classes), dtype=np.int64)
        for part in labels:
            counts += np.bincount(preprocessor.encode_labels(part, source=source), minlength=len(classes))
        weights = balanced_class_weights(counts.tolist(), classes, source)
        return dataclasses.replace(preprocessor, class_weights=weights)

    def weigh_file(self, preprocessor: FittedPreprocessor, train: Path) -> FittedPreprocessor:
        """`weigh` over the label column of the written training split `train` (Parquet), batch by batch."""
        if self.class_weights == "none":
            return preprocessor
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(train).iter_batches(columns=[preprocessor.label])
        return self.weigh(preprocessor, (batch.column(0).to_pandas() for batch in batches), "training split")


NO_BALANCE = ClassBalance()


def train_class_rows(class_rows: Mapping[Any, int], fractions: SplitFractions) -> list[int]:
    """Rows per class that the stratified split leaves in the training split, from rows per class."""
    sizes = []
    for rows in class_rows.values():
        validation, test = held_out_counts(rows, fractions.validation, fractions.test)
        sizes.append(rows - validation - test)
    return sizes


__all__ = [
    "CLASS_WEIGHTS",
    "NO_BALANCE",
    "SAMPLINGS",
    "ClassBalance",
    "ClassWeights",
    "Sampling",
    "SamplingPlan",
    "train_class_rows",
]
