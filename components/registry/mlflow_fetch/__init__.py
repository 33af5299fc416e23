"""Fetch the Model artifact an MLflow registry alias (e.g. champion) points at, as a KFP Model artifact.

`fetch_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["fetch_op"]
__getattr__ = lazy_op(__name__, "fetch_op", "fetch_model_mlflow")
