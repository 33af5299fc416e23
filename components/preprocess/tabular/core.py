"""Tabular preprocessing: schema check, stratified split, and a preprocessor fitted on train.

The splits are written as raw, schema-checked rows; the fitted preprocessor (imputation,
clipping, scaling, encoding; statistics from the training split only) is written as its own
versioned artifact. Training, evaluation and serving apply that same artifact.

The engines live in the library (`kubeforge.preprocess_engine.engines.ENGINES`): ``pandas`` (in
memory, the reference), ``duckdb`` (Arrow-native, streams Parquet with bounded memory: the
component's default) and ``spark`` (pyspark, for data that outgrows one machine) compute the same
splits, the same fitted preprocessor and the same statistics. This core turns the component's
values into one `PreprocessRequest` and picks the engine.
"""

from __future__ import annotations

from pathlib import Path

from kubeforge.preprocess_engine.engines import Engine
from kubeforge.preprocess_engine.engines import preprocess as run_engine
from kubeforge.preprocess_engine.imbalance import NO_BALANCE, ClassBalance
from kubeforge.preprocess_engine.options import SPLITS, PreprocessOutputs, PreprocessResult, SplitFractions
from kubeforge.preprocess_engine.request import PreprocessRequest
from kubeforge.preprocessor import PreprocessOptions


def preprocess(
    input_path: str | Path,
    outputs: PreprocessOutputs,
    label: str,
    task: str = "",
    schema_json: str = "",
    options: PreprocessOptions | None = None,
    fractions: SplitFractions | None = None,
    seed: int = 42,
    engine: Engine = "pandas",
    memory_limit_mb: int = 0,
    query: str = "",
    balance: ClassBalance = NO_BALANCE,
) -> PreprocessResult:
    """Check, split and fit with `engine`; writes every output or, on any error, none of them.

    The arguments are `PreprocessRequest`'s fields (`input_path` is its `source`).
    """
    request = PreprocessRequest(
        source=str(input_path),
        outputs=outputs,
        label=label,
        task=task,
        schema_json=schema_json,
        options=options or PreprocessOptions(),
        fractions=fractions or SplitFractions(),
        seed=seed,
        memory_limit_mb=memory_limit_mb,
        query=query,
        balance=balance,
    )
    return run_engine(request, engine)


__all__ = [
    "SPLITS",
    "ClassBalance",
    "PreprocessOutputs",
    "PreprocessResult",
    "SplitFractions",
    "preprocess",
]
