"""Model deployment behind the Open Inference Protocol v2.

`deploy_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from typing import Any

__all__ = ["deploy_op"]


def __getattr__(name: str) -> Any:
    if name == "deploy_op":
        from .component import deploy_model

        return deploy_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
