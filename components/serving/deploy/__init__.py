"""Model deployment behind the Open Inference Protocol v2.

`deploy_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["deploy_op"]
__getattr__ = lazy_op(__name__, "deploy_op", "deploy_model")
