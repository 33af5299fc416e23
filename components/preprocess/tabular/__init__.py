"""Tabular preprocessing: schema check, stratified split, fitted preprocessor.

`preprocess_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["preprocess_op"]
__getattr__ = lazy_op(__name__, "preprocess_op", "preprocess_tabular")
