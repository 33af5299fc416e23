"""Distributed PyTorch training of tabular models.

`train_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["train_op"]
__getattr__ = lazy_op(__name__, "train_op", "train_pytorch")
