"""Batch inference: score a table with a Model artifact and write the predictions.

`batch_predict_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["batch_predict_op"]
__getattr__ = lazy_op(__name__, "batch_predict_op", "batch_predict")
