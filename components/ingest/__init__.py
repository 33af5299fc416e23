"""Ingest components: bringing data into a pipeline (a PostgreSQL query's rows)."""
