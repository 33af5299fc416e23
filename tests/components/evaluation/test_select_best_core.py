"""evaluation/select_best core: real trained models ranked by their own validation history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kubeforge.components.evaluation.select_best.core import lower_is_better, publish_selection, select_best
from kubeforge.errors import InputError
from kubeforge.model_format import load_model


@pytest.fixture(scope="module")
def weaker_model(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained model whose last recorded validation accuracy is lowered."""
    copy = tmp_path_factory.mktemp("weaker") / "model"
    shutil.copytree(trained_model, copy)
    history = (copy / "metrics_history.jsonl").read_text().splitlines()
    history[-1] = history[-1].replace('"val_accuracy": ', '"val_accuracy": -1.0, "was": ')
    (copy / "metrics_history.jsonl").write_text("\n".join(history) + "\n")
    return copy


def test_best_wins_whatever_the_order(trained_model: Path, weaker_model: Path, tmp_path: Path) -> None:
    forward = select_best([weaker_model, trained_model])
    backward = select_best([trained_model, weaker_model])
    assert Path(forward.best.model_dir) == Path(backward.best.model_dir) == trained_model
    assert [Path(t.model_dir) for t in forward.ranking] == [trained_model, weaker_model]

    publish_selection(forward, tmp_path / "best", tmp_path / "leaderboard.md")
    assert (tmp_path / "best" / "model.pt").read_bytes() == (trained_model / "model.pt").read_bytes()
    assert load_model(tmp_path / "best").manifest == load_model(trained_model).manifest
    board = (tmp_path / "leaderboard.md").read_text().splitlines()
    assert "higher is better" in board[0]
    assert str(trained_model) in board[4] and str(weaker_model) in board[5]


def test_losses_are_minimised(trained_model: Path, weaker_model: Path) -> None:
    assert lower_is_better("val_loss") and lower_is_better("val_rmse") and not lower_is_better("val_accuracy")
    selection = select_best([trained_model, weaker_model], metric="val_loss")
    assert selection.ranking[0].score <= selection.ranking[1].score


def test_unknown_metric_lists_the_recorded_ones(trained_model: Path) -> None:
    with pytest.raises(InputError, match=r"metric 'f1' is not recorded.*val_accuracy"):
        select_best([trained_model], metric="f1")
    with pytest.raises(InputError, match="no trained models"):
        select_best([])
