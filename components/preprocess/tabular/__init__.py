"""Tabular preprocessing: schema check, stratified split, fitted preprocessor.

`preprocess_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from typing import Any

__all__ = ["preprocess_op"]


def __getattr__(name: str) -> Any:
    if name == "preprocess_op":
        from .component import preprocess_tabular

        return preprocess_tabular
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
