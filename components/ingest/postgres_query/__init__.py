"""Ingest from PostgreSQL: a query's rows as a Parquet dataset, the password kept out of parameters.

`postgres_query_op` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["postgres_query_op"]
__getattr__ = lazy_op(__name__, "postgres_query_op", "ingest_postgres_query")
