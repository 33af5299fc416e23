"""Picking the best of several trained models (a hyperparameter sweep's trials).

`select_best_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["select_best_op"]
__getattr__ = lazy_op(__name__, "select_best_op", "select_best_model")
