"""KFP definition of `ingest/postgres_query`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_postgres_query(
    connection_uri: str,
    query: str,
    data: Output[Dataset],
    password_env: str = "",
) -> None:
    """Run `query` on PostgreSQL and write its rows to `data` as one Parquet file.

    `connection_uri` is postgresql://USER@HOST:PORT/DATABASE without a password (a URI with one is
    refused: parameters are stored in plain text). The password comes from a Kubernetes secret mounted
    as PGPASSWORD, or as the environment variable named by `password_env`.
    """
    from kubeforge.components.ingest.postgres_query import core

    result = core.run(connection_uri, query, data.path, password_env=password_env)
    data.metadata["rows"] = result.rows
    data.metadata["columns"] = result.columns
    data.metadata["format"] = "parquet"
