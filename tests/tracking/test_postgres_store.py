"""MLflow on a PostgreSQL store: a training run and the registry work there, the password only in a PGPASSFILE."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from mlflow.tracking import MlflowClient
from mlflow_server import MlflowServer, started_mlflow_server
from postgres_server import postgres_available, running_postgres
from tiny_model import small_table, write_tiny_model

from kubeforge import tracking
from kubeforge.components.registry.mlflow import core as registry

pytestmark = pytest.mark.tracking  # a real `mlflow server`: `make test-tracking`

ROLE = "mlflow"


@dataclass(frozen=True)
class PostgresTracking:
    server: MlflowServer
    database_url: str  # the superuser's URL, to look into the store
    password: str


@pytest.fixture(scope="module")
def pg_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresTracking]:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps` (installs postgresql-15)")
    password = secrets.token_urlsafe(16)
    with running_postgres() as postgres:
        postgres.add_password_role(ROLE, password)
        database_url = postgres.create_database()
        database = database_url.rsplit("/", 1)[1]
        with psycopg.connect(postgres.url(), autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE {database} OWNER TO "{ROLE}"')
        passfile = tmp_path_factory.mktemp("pgpass") / "pgpass"
        passfile.write_text(f"127.0.0.1:{postgres.port}:{database}:{ROLE}:{password}\n")
        passfile.chmod(0o600)  # libpq ignores a password file others can read
        store = f"postgresql+psycopg://{ROLE}@127.0.0.1:{postgres.port}/{database}"
        with started_mlflow_server(store, env={"PGPASSFILE": str(passfile)}) as server:
            yield PostgresTracking(server, database_url, password)


def test_a_training_run_and_the_registry_live_in_postgresql(pg_tracking: PostgresTracking, tmp_path: Path) -> None:
    url = pg_tracking.server.url
    first = write_tiny_model(small_table(1), "label", tmp_path / "first")
    second = write_tiny_model(small_table(2), "label", tmp_path / "second")
    meta = tracking.log_training_run(url, first, "file:///pg/1/model", params={"epochs": 2}, environ={})
    registry.register_model(url, str(first), "file:///pg/1/model", "pg-churn", aliases="champion")
    registry.register_model(
        url, str(second), "file:///pg/2/model", "pg-churn", aliases="champion", previous_alias="previous_champion"
    )

    client = MlflowClient(tracking_uri=url)
    run = client.get_run(meta["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.params == {"epochs": "2"}
    assert sorted(point.step for point in client.get_metric_history(run.info.run_id, "val_loss")) == [1, 2]
    assert dict(client.get_registered_model("pg-churn").aliases) == {"champion": "2", "previous_champion": "1"}
    with psycopg.connect(pg_tracking.database_url) as connection:  # the rows are in PostgreSQL itself
        versions = connection.execute(
            "SELECT version FROM model_versions WHERE name = 'pg-churn' ORDER BY 1"
        ).fetchall()
        aliases = connection.execute("SELECT alias, version FROM registered_model_aliases ORDER BY 1").fetchall()
        runs = connection.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,)).fetchall()
    assert versions == [(1,), (2,)]
    assert aliases == [("champion", 2), ("previous_champion", 1)]
    assert runs == [("FINISHED",)]


def test_the_password_is_in_no_argv_and_no_log(pg_tracking: PostgresTracking) -> None:
    pid = pg_tracking.server.process.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "postgresql+psycopg://mlflow@127.0.0.1:" in argv
    assert pg_tracking.password not in argv
    assert pg_tracking.password not in pg_tracking.server.log.read_text(errors="replace")
