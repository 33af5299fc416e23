"""The preprocessing engines by name, and `preprocess()`, which readies a request and hands it to one."""

from __future__ import annotations

from typing import Literal

from kubeforge.errors import InputError
from kubeforge.ingest import local_table
from kubeforge.preprocess_engine.engine_duckdb import preprocess_duckdb
from kubeforge.preprocess_engine.engine_pandas import preprocess_pandas
from kubeforge.preprocess_engine.engine_spark import preprocess_spark
from kubeforge.preprocess_engine.options import PreprocessResult
from kubeforge.preprocess_engine.request import PreprocessEngine, PreprocessRequest
from kubeforge.preprocess_engine.task_choice import choose_task

Engine = Literal["pandas", "duckdb", "spark"]

ENGINES: dict[str, PreprocessEngine] = {
    "pandas": preprocess_pandas,
    "duckdb": preprocess_duckdb,
    "spark": preprocess_spark,
}
"""Every engine (pyspark is imported only when the spark engine runs); docs/architecture.md says how to add one."""


def preprocess(request: PreprocessRequest, engine: str) -> PreprocessResult:
    """Run `request` on `engine`: fetch the input as a local table, choose the task, then preprocess.

    Writes every output or, on any error, none of them.
    """
    if engine not in ENGINES:
        raise InputError(f"engine is {engine!r}; valid values are {', '.join(ENGINES)}")
    with local_table(request.source, request.query) as table:
        task = choose_task(table, request.label, request.task, request.source)
        request.balance.check_task(task.task)
        return ENGINES[engine](request, table, task)


__all__ = ["ENGINES", "Engine", "preprocess"]
