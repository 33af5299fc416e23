"""Shared parts of the preprocessing backends (pandas, DuckDB, Spark).

`split_assign` is the split rule they all compute, `fitting` builds a fitted preprocessor from engine
aggregates, `summary` holds the split statistics behind the report, `duckdb_source` opens and types
CSV/Parquet input for DuckDB, `ranked_keys` finds keys of given ranks (the split thresholds) without a
sort, `transform_arrow` applies a fitted preprocessor to a Parquet split in a stream.
"""

__all__: list[str] = []
