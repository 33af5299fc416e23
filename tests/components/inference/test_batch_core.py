"""inference/batch core: real model, real rows, predictions compared with the model's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeforge.components.inference.batch.core import BatchOptions, parse_keep_columns, predict_table
from kubeforge.errors import InputError
from kubeforge.model_format import load_model


def test_predictions_match_the_model_in_chunks_with_kept_columns(
    prepared: Any, trained_model: Path, tmp_path: Path
) -> None:
    rows = pd.read_parquet(prepared.test).assign(row_id=lambda f: range(len(f)))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    options = BatchOptions(keep_columns=parse_keep_columns("row_id, target"), chunk_rows=7)

    result = predict_table(tmp_path / "rows.csv", trained_model, str(tmp_path / "out.parquet"), options)

    written = pd.read_parquet(tmp_path / "out.parquet")
    expected = load_model(trained_model).predict_frame(rows)
    assert result.rows == len(rows) == len(written)
    assert list(written.columns) == ["row_id", "target", "prediction", "probability_0", "probability_1"]
    assert written["row_id"].tolist() == list(range(len(rows)))
    assert written["prediction"].tolist() == expected.labels
    assert written[["probability_0", "probability_1"]].sum(axis=1).round(5).eq(1.0).all()
    assert (written["prediction"] == written["target"]).mean() >= 0.9


def test_csv_without_probabilities(prepared: Any, trained_model: Path, tmp_path: Path) -> None:
    options = BatchOptions(output_format="csv", include_probabilities=False)
    predict_table(prepared.test, trained_model, str(tmp_path / "out.csv"), options)
    assert list(pd.read_csv(tmp_path / "out.csv").columns) == ["prediction"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BatchOptions(output_format="json"), "output_format is 'json'; valid formats: parquet, csv"),
        (BatchOptions(keep_columns=("no_such",)), "missing column"),
        (BatchOptions(keep_columns=("prediction",)), "clash"),
        (BatchOptions(chunk_rows=0), "chunk_rows"),
    ],
)
def test_bad_options_write_nothing(
    options: BatchOptions, message: str, prepared: Any, trained_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=message):
        predict_table(prepared.test, trained_model, str(tmp_path / "out.parquet"), options)
    assert list(tmp_path.iterdir()) == []


def test_missing_feature_column_names_it_and_writes_nothing(prepared: Any, trained_model: Path, tmp_path: Path) -> None:
    pd.read_parquet(prepared.test).drop(columns=["mean radius"]).to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(InputError, match="missing feature column\\(s\\) 'mean radius'"):
        predict_table(tmp_path / "rows.parquet", trained_model, str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()
