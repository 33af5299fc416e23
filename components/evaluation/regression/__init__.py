"""Regression evaluation with metrics, plots and a deployment gate.

`evaluate_regression_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["evaluate_regression_op"]
__getattr__ = lazy_op(__name__, "evaluate_regression_op", "evaluate_regressor")
