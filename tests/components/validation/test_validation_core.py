"""The validation/data core on real files: constraints, PSI/KS drift, the report, the verdict, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubeforge.components.validation.data.core import DriftOptions, validate
from kubeforge.components.validation.data.drift import psi
from kubeforge.errors import InputError


def _table(rows: int, seed: int, shift: float = 0.0, city_p: tuple[float, ...] = (0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + shift, 10, rows)
    age[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "age": age,
            "city": rng.choice(["berlin", "paris", "rome"], rows, p=list(city_p)),
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


CONSTRAINTS = json.dumps(
    {
        "id": {"kind": "numeric", "unique": True, "min": 0},
        "age": {"kind": "numeric", "min": -20, "max": 120, "max_null_rate": 0.05},
        "city": {"kind": "categorical", "allowed": ["berlin", "paris", "rome"]},
    }
)


def test_clean_data_without_drift_passes(tmp_path: Path) -> None:
    data = _write(_table(4000, 1), tmp_path / "data.parquet")
    reference = _write(_table(4000, 2), tmp_path / "reference.parquet")
    result = validate(data, str(tmp_path / "r.html"), str(tmp_path / "s.json"), CONSTRAINTS, reference)
    assert result.passed, result
    assert result.rows == 4000
    assert {(f.column, f.check) for f in result.findings} >= {("id", "unique"), ("age", "range"), ("city", "allowed")}
    assert {d.column: d.method for d in result.drift} == {"id": "ks", "age": "ks", "city": "psi"}
    assert "PASSED" in (tmp_path / "r.html").read_text()
    assert json.loads((tmp_path / "s.json").read_text())["passed"] is True


def test_violations_fail_with_named_columns(tmp_path: Path) -> None:
    frame = _table(1000, 1)
    frame.loc[3, "id"] = 4  # duplicate id
    frame.loc[200, "age"] = 500.0
    frame.loc[20, "city"] = "madrid"
    frame.loc[frame.index[:100], "age"] = np.nan  # 10% null
    data = _write(frame, tmp_path / "data.parquet")
    result = validate(data, str(tmp_path / "r.html"), str(tmp_path / "s.json"), CONSTRAINTS)
    failed = {(f.column, f.check): f.detail for f in result.findings if not f.passed}
    assert not result.passed
    assert set(failed) == {("id", "unique"), ("age", "range"), ("age", "null_rate"), ("city", "allowed")}
    assert "1 duplicate" in failed[("id", "unique")]
    assert "'madrid' (1)" in failed[("city", "allowed")]
    html = (tmp_path / "r.html").read_text()
    assert "FAILED" in html and "madrid" in html


def test_drift_is_detected_by_ks_and_psi(tmp_path: Path) -> None:
    data = _write(_table(4000, 1, shift=8.0, city_p=(0.1, 0.3, 0.6)), tmp_path / "data.parquet")
    reference = _write(_table(4000, 2), tmp_path / "reference.parquet")
    result = validate(data, str(tmp_path / "r.html"), str(tmp_path / "s.json"), reference=reference)
    drifted = {d.column for d in result.drift if not d.passed}
    assert drifted == {"age", "city"}
    assert not result.passed


def test_psi_matches_the_textbook_formula() -> None:
    current, reference = {"a": 30, "b": 70}, {"a": 50, "b": 50}
    expected = (0.3 - 0.5) * np.log(0.3 / 0.5) + (0.7 - 0.5) * np.log(0.7 / 0.5)
    assert psi(current, reference) == pytest.approx(expected)
    assert psi(reference, reference) == 0.0


def test_csv_input_and_missing_required_column(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _table(200, 1).drop(columns=["city"]).to_csv(path, index=False)
    result = validate(str(path), str(tmp_path / "r.html"), str(tmp_path / "s.json"), CONSTRAINTS)
    assert next(f for f in result.findings if not f.passed).detail == "column is missing"


@pytest.mark.parametrize(
    ("constraints", "reference_columns", "expected"),
    [
        ('{"age": {"kind": "float"}}', None, "column 'age' has kind 'float'"),
        ('{"age": {"maximum": 3}}', None, "unknown key(s) ['maximum']"),
        ('{"age": {"max_null_rate": 2}}', None, "max_null_rate is 2"),
        ("{age}", None, "constraints: not valid JSON"),
        ("", ["id", "age", "country"], "only in the data ['city'], only in the reference ['country']"),
    ],
    ids=["bad-kind", "unknown-key", "bad-rate", "not-json", "reference-with-other-columns"],
)
def test_bad_input_raises_and_writes_nothing(
    constraints: str, reference_columns: list[str] | None, expected: str, tmp_path: Path
) -> None:
    data = _write(_table(100, 1), tmp_path / "data.parquet")
    reference = ""
    if reference_columns:
        reference = _write(_table(100, 2).set_axis(reference_columns, axis=1), tmp_path / "ref.parquet")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        validate(data, str(out / "r.html"), str(out / "s.json"), constraints, reference, DriftOptions())
    assert list(out.iterdir()) == []


def test_corrupt_reference_names_the_file(tmp_path: Path) -> None:
    data = _write(_table(100, 1), tmp_path / "data.parquet")
    bad = tmp_path / "reference.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=str(bad)):
        validate(data, str(tmp_path / "r.html"), str(tmp_path / "s.json"), reference=str(bad))
