"""evaluation/explain recovers a planted signal: the column that decides the label ranks first, by both methods."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_model import planted_table, write_tiny_model

from kubeforge.components.evaluation.explain import core
from kubeforge.errors import InputError
from kubeforge.explain import fold_to_columns
from kubeforge.preprocessor import FittedPreprocessor


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("planted")
    frame = planted_table()
    table = folder / "rows.parquet"
    frame.to_parquet(table)
    return write_tiny_model(frame, "label", folder / "model", epochs=3), table


@pytest.mark.parametrize("method", ["integrated_gradients", "permutation"])
def test_the_deciding_column_ranks_first(planted: tuple[Path, Path], method: str, tmp_path: Path) -> None:
    model_dir, table = planted
    explanation = core.explain(model_dir, table, sample_rows=120, method=method)
    ranking = list(explanation.importance)
    assert ranking[0] == "color", explanation.importance
    assert sorted(ranking) == ["color", "shade", "size", "weight"]  # raw columns, one-hot groups folded
    core.publish(explanation, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / core.ROWS_FILE).read_text().splitlines()]
    assert len(rows) == 120
    firsts = [next(iter(row["attributions"])) for row in rows]
    assert max(set(firsts), key=firsts.count) == "color"  # the column most rows are explained by
    assert "| 1 | color |" in (tmp_path / "out" / core.TABLE_FILE).read_text()
    assert (tmp_path / "out" / core.PLOT_FILE).read_bytes()[:4] == b"\x89PNG"


def test_a_one_hot_group_sums_to_its_column(planted: tuple[Path, Path]) -> None:
    model_dir, _ = planted
    preprocessor = FittedPreprocessor.load(model_dir / "preprocessor.json")
    encoded = np.arange(2 * len(preprocessor.output_columns), dtype=float).reshape(2, -1)
    folded = fold_to_columns(preprocessor, encoded)
    by_column = {f.name: i for i, f in enumerate(preprocessor.features)}
    color_cells = [i for i, name in enumerate(preprocessor.output_columns) if name.startswith("color=")]
    assert len(color_cells) == 4  # red, green, blue and the reserved level for rare and unseen colours
    assert folded[1, by_column["color"]] == encoded[1, color_cells].sum()
    assert folded.sum() == encoded.sum()


def test_bad_parameters_are_refused_naming_the_field(planted: tuple[Path, Path]) -> None:
    model_dir, table = planted
    with pytest.raises(InputError, match="method"):
        core.explain(model_dir, table, method="shap")
    with pytest.raises(InputError, match="sample_rows"):
        core.explain(model_dir, table, sample_rows=0)
