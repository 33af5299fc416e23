"""Hyperparameter tuning with Optuna: trials are training jobs, bad ones pruned between epochs.

`tune_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["tune_op"]
__getattr__ = lazy_op(__name__, "tune_op", "tune_optuna")
