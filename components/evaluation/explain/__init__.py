"""Explain a model's predictions: attributions of raw columns on a sample of rows (Integrated Gradients or permutation).

`explain_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["explain_op"]
__getattr__ = lazy_op(__name__, "explain_op", "explain_model")
