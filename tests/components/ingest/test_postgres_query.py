"""ingest/postgres_query against a real PostgreSQL (Debian's postgresql-15) started on loopback.

The server trusts `postgres`, but a role `reader` must log in with a SCRAM password (a pg_hba rule
added by the fixture), so the tests see the password really travel from the environment to the server.
The component runs from its checked-in component.yaml through kfp.local, alone and feeding
preprocess/tabular; the errors are checked on the core: nothing is published when a run fails.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from kfp import components, dsl
from postgres_server import PostgresServer, postgres_available, running_postgres
from sales_table import sales_table

from kubeforge.components.ingest.postgres_query.core import run
from kubeforge.errors import InputError
from kubeforge.local.journal import STATE_FOLDER
from kubeforge.local.report import REPORT_FILE
from kubeforge.local_runner import run_pipeline_locally
from kubeforge_dev.catalog_build import repository_root

PASSWORD = "s3cret-for-tests"
PASSWORD_ENV = "KUBEFORGE_TEST_DB_PASSWORD"
ROWS = 400
QUERY = "SELECT amount, visits, channel, member, bought FROM sales ORDER BY id"


def _require_password_for_reader(server: PostgresServer) -> None:
    hba = server.root / "data" / "pg_hba.conf"
    hba.write_text("host all reader 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    with psycopg.connect(server.url(), autocommit=True) as connection:
        connection.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="module")
def reader_url() -> Iterator[str]:
    """A database holding table `sales`, as the URL of role `reader` (no password in it)."""
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps` (installs postgresql-15)")
    with running_postgres() as server:
        owner_url = server.create_database()
        with psycopg.connect(owner_url) as connection:
            connection.execute(
                "CREATE TABLE sales (id serial, amount double precision, visits integer, channel text, "
                "member boolean, bought integer)"
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO sales (amount, visits, channel, member, bought) VALUES (%s, %s, %s, %s, %s)",
                    [
                        (None if np.isnan(a) else float(a), int(v), c, bool(m), int(b))
                        for a, v, c, m, b in sales_table(ROWS, seed=11).itertuples(index=False)
                    ],
                )
            connection.execute(f"CREATE ROLE reader LOGIN PASSWORD '{PASSWORD}'")
            connection.execute("GRANT SELECT ON sales TO reader")
            connection.execute("GRANT USAGE ON SEQUENCE sales_id_seq TO reader")  # ingest stays read-only anyway
        _require_password_for_reader(server)
        yield owner_url.replace("postgresql://postgres@", "postgresql://reader@")


@pytest.fixture
def password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.delenv("PGPASSWORD", raising=False)


def _load(key: str) -> object:
    return components.load_component_from_file(str(repository_root() / "components" / key / "component.yaml"))


@pytest.mark.usefixtures("password_in_env")
def test_core_writes_the_query_result_as_parquet(reader_url: str, tmp_path: Path) -> None:
    result = run(reader_url, QUERY, tmp_path / "sales.parquet", password_env=PASSWORD_ENV)

    assert result.rows == ROWS
    assert result.columns == ["amount", "visits", "channel", "member", "bought"]
    written = pd.read_parquet(tmp_path / "sales.parquet")
    expected = sales_table(ROWS, seed=11)
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert written["visits"].dtype == "int64" and written["member"].dtype == "bool"


@pytest.mark.usefixtures("password_in_env")
def test_pipeline_starts_from_a_query_and_trains_on_balanced_classes(reader_url: str, tmp_path: Path) -> None:
    """query -> preprocess (undersampled, balanced weights) -> train (the preprocessor's weights), all
    three components loaded from their component.yaml, as another team would reuse them."""
    query_op, preprocess_op, train_op = (
        _load("ingest/postgres_query"),
        _load("preprocess/tabular"),
        _load("training/pytorch"),
    )

    @dsl.pipeline(name="query-then-train")
    def from_query() -> None:
        rows = query_op(connection_uri=reader_url, query=QUERY, password_env=PASSWORD_ENV)  # type: ignore[operator]
        prepared = preprocess_op(  # type: ignore[operator]
            data=rows.outputs["data"], label_column="bought", sampling="undersample", class_weights="balanced"
        )
        train_op(  # type: ignore[operator]
            train_data=prepared.outputs["train_data"],
            validation_data=prepared.outputs["validation_data"],
            preprocessor=prepared.outputs["preprocessor"],
            workers=1,
            epochs=1,
            class_weighting="preprocessor",
        )

    run_dir = run_pipeline_locally(from_query, {}, tmp_path / "root").run_dir
    assert len(pd.read_parquet(run_dir / "ingest-postgres-query" / "data")) == ROWS
    executor = json.loads((run_dir / "ingest-postgres-query" / "executor_output.json").read_text())
    assert executor["artifacts"]["data"]["artifacts"][0]["metadata"]["rows"] == ROWS
    prepared = run_dir / "preprocess-tabular"
    counts = pd.read_parquet(prepared / "train_data")["bought"].value_counts()
    assert counts[0] == counts[1]
    preprocessor = json.loads((prepared / "preprocessor").read_text())
    assert [f["name"] for f in preprocessor["features"]] == ["amount", "visits", "channel", "member"]
    assert preprocessor["class_weights"] == [1.0, 1.0]
    model = json.loads((run_dir / "train-pytorch" / "model" / "kubeforge_model.json").read_text())
    assert model["training"]["class_weights"] == [1.0, 1.0]


@pytest.mark.usefixtures("password_in_env")
def test_an_empty_result_fails_the_task_and_leaves_no_dataset(reader_url: str, tmp_path: Path) -> None:
    query_op = _load("ingest/postgres_query")

    @dsl.pipeline(name="query-nothing")
    def nothing() -> None:
        query_op(  # type: ignore[operator]
            connection_uri=reader_url, query="SELECT * FROM sales WHERE visits < 0", password_env=PASSWORD_ENV
        )

    with pytest.raises(InputError, match="returned no rows; check its WHERE clause and table"):
        run_pipeline_locally(nothing, {}, tmp_path / "root")
    written = [
        path
        for path in (tmp_path / "root").rglob("*")
        if path.is_file() and STATE_FOLDER not in path.parts and path.name != REPORT_FILE
    ]
    assert written == []  # the local runner's own run record and run report aside


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM sales WHERE visits > 1000", "returned no rows; check its WHERE clause"),
        ("SELECT * FROM no_such_table", 'relation "no_such_table" does not exist'),
        ("SELECT amount FROM sales WHERE amount >", "syntax error"),
        ("   ", "query is empty"),
        ("SELECT nextval('sales_id_seq') AS id", "cannot execute nextval.. in a read-only transaction"),
        ("DELETE FROM sales RETURNING *", "syntax error"),
    ],
    ids=["empty-result", "missing-table", "syntax-error", "blank", "writes-refused", "not-a-select"],
)
@pytest.mark.usefixtures("password_in_env")
def test_bad_queries_publish_nothing(reader_url: str, tmp_path: Path, query: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        run(reader_url, query, tmp_path / "out" / "sales.parquet", password_env=PASSWORD_ENV)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with psycopg.connect(reader_url, password=PASSWORD) as connection:
        assert connection.execute("SELECT count(*), max(id) FROM sales").fetchone() == (ROWS, ROWS)


def test_a_password_in_the_uri_is_refused_before_connecting(reader_url: str, tmp_path: Path) -> None:
    with_password = reader_url.replace("reader@", f"reader:{PASSWORD}@")
    with pytest.raises(InputError, match="connection_uri carries a password") as raised:
        run(with_password, QUERY, tmp_path / "sales.parquet")
    assert PASSWORD not in str(raised.value)
    with pytest.raises(InputError, match="connection_uri carries a password"):
        run(f"{reader_url}?password={PASSWORD}", QUERY, tmp_path / "sales.parquet")
    assert not (tmp_path / "sales.parquet").exists()


def test_password_errors_name_the_variable(reader_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(InputError, match=f"password_env is '{PASSWORD_ENV}' but that environment variable is not set"):
        run(reader_url, QUERY, tmp_path / "sales.parquet", password_env=PASSWORD_ENV)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(InputError, match='password authentication failed for user "reader"'):
        run(reader_url, QUERY, tmp_path / "sales.parquet", password_env=PASSWORD_ENV)
    assert not (tmp_path / "sales.parquet").exists()


def test_libpq_reads_pgpassword_when_no_variable_is_named(
    reader_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert run(reader_url, QUERY, tmp_path / "sales.parquet").rows == ROWS


def test_a_non_postgres_uri_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a PostgreSQL URI; use postgresql://USER@HOST"):
        run("mysql://reader@127.0.0.1/sales", QUERY, tmp_path / "sales.parquet")
