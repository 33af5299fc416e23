"""Ingest for preprocessing: s3:// (moto's S3 server), gs:// (gcp-storage-emulator) and a PostgreSQL query.

PostgreSQL is Debian's postgresql-15 (`make system-deps`), started on loopback in a temp folder and
stopped afterwards; the object stores are the conftest's real-API emulators on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from postgres_server import PostgresServer, postgres_available, running_postgres
from sales_table import sales_table

from kubeforge.artifacts import write_bytes
from kubeforge.components.preprocess.tabular.core import SPLITS, PreprocessOutputs, preprocess
from kubeforge.errors import InputError

OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


def _outputs(directory: Path) -> PreprocessOutputs:
    directory.mkdir(parents=True, exist_ok=True)
    return PreprocessOutputs(*(str(directory / name) for name in OUTPUT_NAMES))


def _splits(directory: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in SPLITS}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("local")
    path = folder / "sales.parquet"
    sales_table(600, seed=4).drop(columns="member").to_parquet(path, index=False)
    preprocess(path, _outputs(folder / "out"), label="bought", engine="duckdb")
    return path, folder / "out"


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_s3_object_gives_the_same_outputs_as_the_local_file(
    s3_bucket: str, local_run: tuple[Path, Path], tmp_path: Path, engine: str
) -> None:
    path, expected = local_run
    uri = f"s3://{s3_bucket}/raw/sales.parquet"
    write_bytes(uri, path.read_bytes())
    result = preprocess(uri, _outputs(tmp_path), label="bought", engine=engine)  # type: ignore[arg-type]
    assert sum(result.rows.values()) == 600
    for name, frame in _splits(tmp_path).items():
        pd.testing.assert_frame_equal(frame, _splits(expected)[name], check_dtype=False)
    assert f"Source: `{uri}`" in (tmp_path / "statistics.md").read_text()


def test_gs_object_gives_the_same_outputs_as_the_local_file(
    gcs_bucket: str, local_run: tuple[Path, Path], tmp_path: Path
) -> None:
    path, expected = local_run
    uri = f"gs://{gcs_bucket}/raw/sales.parquet"
    write_bytes(uri, path.read_bytes())
    preprocess(uri, _outputs(tmp_path), label="bought", engine="duckdb")
    assert (tmp_path / "preprocessor.json").read_text() == (expected / "preprocessor.json").read_text()


def test_corrupt_remote_object_is_named_by_its_uri(s3_bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{s3_bucket}/raw/broken.parquet"
    write_bytes(uri, b"PAR1 not really parquet")
    with pytest.raises(InputError, match=f"input file {uri} cannot be"):
        preprocess(uri, _outputs(tmp_path / "out"), label="bought", engine="duckdb")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps` (installs postgresql-15)")
    server: PostgresServer
    with running_postgres() as server:
        url = server.create_database()
        frame = sales_table(600, seed=4).drop(columns="member")
        with psycopg.connect(url) as connection:
            connection.execute(
                "CREATE TABLE sales (id serial, amount double precision, visits integer, channel text, bought integer)"
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO sales (amount, visits, channel, bought) VALUES (%s, %s, %s, %s)",
                    [
                        (None if np.isnan(a) else float(a), int(v), c, int(b))
                        for a, v, c, b in frame.itertuples(index=False)
                    ],
                )
        yield url


def test_postgres_query_gives_the_same_outputs_as_the_file(
    postgres_url: str, local_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, expected = local_run
    query = "SELECT amount, visits, channel, bought FROM sales ORDER BY id"
    result = preprocess(postgres_url, _outputs(tmp_path), label="bought", engine="duckdb", query=query)
    assert sum(result.rows.values()) == 600
    for name, frame in _splits(tmp_path).items():
        pd.testing.assert_frame_equal(frame, _splits(expected)[name], check_dtype=False)
    assert (tmp_path / "preprocessor.json").read_text() == (expected / "preprocessor.json").read_text()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM sales WHERE visits > 1000", "returned no rows"),
        ("SELECT * FROM no_such_table", 'relation "no_such_table" does not exist'),
        ("", "needs a query"),
    ],
    ids=["empty-result", "bad-table", "no-query"],
)
def test_bad_postgres_queries_write_nothing(postgres_url: str, tmp_path: Path, query: str, expected: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match=expected):
        preprocess(postgres_url, _outputs(out), label="bought", engine="duckdb", query=query)
    assert list(out.iterdir()) == []
