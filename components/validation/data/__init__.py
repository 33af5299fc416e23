"""Data validation: schema and value constraints, drift against a reference dataset, an HTML report.

`validate_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["validate_op"]
__getattr__ = lazy_op(__name__, "validate_op", "validate_data")
