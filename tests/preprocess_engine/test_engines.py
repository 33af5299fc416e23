"""The engine map and the one request type: every engine takes the same request, bad names are refused."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args

import pytest

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.engines import ENGINES, Engine, preprocess
from kubeforge.preprocess_engine.options import PreprocessOutputs
from kubeforge.preprocess_engine.request import PreprocessEngine, PreprocessRequest

OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


def _request(tmp_path: Path, **fields: object) -> PreprocessRequest:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    outputs = PreprocessOutputs(*(str(tmp_path / "out" / name) for name in OUTPUT_NAMES))
    return PreprocessRequest(str(data), outputs, label="y", **fields)  # type: ignore[arg-type]


def test_the_map_names_every_engine_the_type_allows() -> None:
    assert set(ENGINES) == set(get_args(Engine)) == {"pandas", "duckdb", "spark"}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_engine_takes_the_request_the_local_table_and_the_task(name: str) -> None:
    expected = list(inspect.signature(PreprocessEngine.__call__).parameters)[1:]
    assert list(inspect.signature(ENGINES[name]).parameters) == expected == ["request", "table", "task"]


def test_an_unknown_engine_is_refused_by_name_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"engine is 'polars'; valid values are pandas, duckdb, spark"):
        preprocess(_request(tmp_path), "polars")
    assert not (tmp_path / "out").exists()


def test_the_request_refuses_an_unknown_task_naming_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"task is 'ranking'; valid values are classification, regression"):
        _request(tmp_path, task="ranking")


@pytest.mark.parametrize("name", ["pandas", "duckdb"])
def test_one_request_gives_the_same_rows_on_each_engine(tmp_path: Path, name: str) -> None:
    result = preprocess(_request(tmp_path, seed=3), name)
    assert result.rows == {"train": 28, "validation": 6, "test": 6}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_NAMES)
