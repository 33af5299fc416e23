"""Register a Model artifact in the MLflow model registry and move its aliases (champion, challenger).

`register_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["register_op"]
__getattr__ = lazy_op(__name__, "register_op", "register_model_mlflow")
