"""The preprocessing engines (pandas, DuckDB, Spark) behind one `PreprocessRequest`, and their shared parts.

`engines` maps each engine's name to it (`ENGINES`) and runs a request (`preprocess`); `request`
holds the request and the engine interface, `options` the split fractions, outputs and result.
`engine_pandas`, `engine_duckdb` and `engine_spark` are the engines (`spark_application` runs the
spark one on Kubernetes). Their shared parts: `split_assign` is the split rule they all compute,
`task_choice` the task inferred from the label, `imbalance` the class-balance options, `fitting`
builds a fitted preprocessor from engine aggregates, `summary` and `report` the split statistics
and their Markdown report, `duckdb_source` opens and types CSV/Parquet input for DuckDB,
`ranked_keys` finds keys of given ranks (the split thresholds) without a sort, `budget` is the
duckdb engine's memory budget, `transform_arrow` applies a fitted preprocessor to a Parquet split
in a stream.
"""

__all__: list[str] = []
