"""The one request every preprocessing engine takes, and the engine interface.

`PreprocessRequest` holds what the caller asks for (the input, the outputs, the label, the schema,
the options, the split, the class balance); an engine receives it with the input as a local table
and the task chosen for its label (`task_choice`), and returns a `PreprocessResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.imbalance import NO_BALANCE, ClassBalance
from kubeforge.preprocess_engine.options import PreprocessOutputs, PreprocessResult, SplitFractions
from kubeforge.preprocess_engine.task_choice import TaskChoice
from kubeforge.preprocessor import TASKS, PreprocessOptions


@dataclass(frozen=True)
class PreprocessRequest:
    """One preprocessing run: check `source`, split it, fit a preprocessor on the training split.

    `source` is a local path, an s3:// or gs:// URI, or a postgresql:// URI with `query` set.
    `task` empty: inferred from the label column (`task_choice`). `memory_limit_mb` is the duckdb
    engine's whole memory budget on top of its imported libraries (`budget`; 0: no budget, DuckDB's
    default limit); the other engines ignore it. `balance` resamples the training split and/or
    stores class weights (classification only).
    """

    source: str
    outputs: PreprocessOutputs
    label: str
    task: str = ""
    schema_json: str = ""
    options: PreprocessOptions = field(default_factory=PreprocessOptions)
    fractions: SplitFractions = field(default_factory=SplitFractions)
    seed: int = 42
    memory_limit_mb: int = 0
    query: str = ""
    balance: ClassBalance = NO_BALANCE

    def __post_init__(self) -> None:
        if self.task not in ("", *TASKS):
            raise InputError(
                f"task is {self.task!r}; valid values are {', '.join(TASKS)}, or empty to infer it from the label"
            )


class PreprocessEngine(Protocol):
    """An engine: checks, splits and fits `request` read from the local `table` as task `task`.

    Writes every output of `request.outputs` or, on any error, none of them; every engine computes
    the same splits, the same fitted preprocessor and the same statistics.
    """

    def __call__(self, request: PreprocessRequest, table: Path, task: TaskChoice) -> PreprocessResult:
        """Preprocess `request` and return what was written."""


__all__ = ["PreprocessEngine", "PreprocessRequest"]
