"""Every catalogue pipeline gives the same outputs through kubeforge's runner as through kfp.local's.

Each pipeline runs once through kfp.local's SubprocessRunner and once through kubeforge's runner,
on the smallest settings that still exercise every task (one worker, one epoch, gates set so
nothing is deployed), seeded as the components seed themselves. Every file of every task is
compared: datasets, predictions and reports byte for byte; JSON (and the JSON lines of logs)
without the keys that hold a wall-clock reading; TorchScript archives member by member (see
_zip_members); training checkpoints by content, without their epoch history's timings;
executor outputs and reports with the run folder's name taken out (and the metrics' timings);
a training job's handle and the launcher's records of it (the process id and scratch folder of
that run) by backend only.
"""

import dataclasses
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from kfp import local
from prepared_data import PreparedData
from sklearn.datasets import load_diabetes, load_digits

from kubeforge.catalog.pipelines import builtin_pipelines, load_pipeline
from kubeforge.launch.base import JobHandle
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import LocalRun, run_pipeline_locally

_TIME_KEY = re.compile(r"(^|_)(seconds|per_second|time|timestamp|started|finished|created)($|_)")
_IMPOSSIBLE_GATE = '{"log_loss": 0.0001}'


def _params(name: str, csv: Path, prepared: PreparedData, model: Path, tmp: Path) -> dict[str, Any]:
    small = {"workers": 1, "epochs": 1}
    if name == "tabular_classifier":
        return {"data_uri": str(csv), "thresholds": _IMPOSSIBLE_GATE, **small}
    if name == "batch_prediction":
        return {"data_uri": str(prepared.test), "model_uri": str(model), "keep_columns": "target"}
    if name == "champion_challenger":
        return {"data_uri": str(csv), "champion_model_uri": str(model), "hidden_layers": "1", **small}
    if name == "hyperparameter_sweep":
        space = [{"learning_rate": 0.01, "hidden_layers": "4"}, {"learning_rate": 0.001, "hidden_layers": "8"}]
        return {"data_uri": str(csv), "search_space": space, **small}
    if name == "image_classifier":
        digits = tmp / "digits.csv"
        load_digits(as_frame=True).frame.head(300).to_csv(digits, index=False)
        return {"data_uri": str(digits), "thresholds": _IMPOSSIBLE_GATE, **small}
    if name == "tabular_regressor":
        diabetes = tmp / "diabetes.csv"
        load_diabetes(as_frame=True).frame.to_csv(diabetes, index=False)
        return {"data_uri": str(diabetes), "thresholds": '{"r2": 0.999}', **small}
    raise AssertionError(f"no small settings for the catalogue's new pipeline {name!r}: add them here")


# batch_prediction (two tasks) runs in `make test`; the rest, minutes of kfp.local subprocesses, in
# `make test-local-equivalence`.
_HEAVY = pytest.mark.local_equivalence
CATALOGUE = [
    "batch_prediction",
    pytest.param("champion_challenger", marks=_HEAVY),
    pytest.param("hyperparameter_sweep", marks=_HEAVY),
    pytest.param("image_classifier", marks=_HEAVY),
    pytest.param("tabular_classifier", marks=_HEAVY),
    pytest.param("tabular_regressor", marks=_HEAVY),
]


@pytest.mark.parametrize("name", CATALOGUE)
def test_outputs_match_kfp_local(
    name: str, breast_cancer_csv: Path, prepared: PreparedData, trained_model: Path, tmp_path: Path
) -> None:
    pipeline = load_pipeline(name)
    params = _params(name, breast_cancer_csv, prepared, trained_model, tmp_path)
    theirs = run_pipeline_locally(pipeline, params, tmp_path / "kfp", runner=local.SubprocessRunner(use_venv=False))
    ours = run_pipeline_locally(pipeline, params, tmp_path / "kubeforge", options=RunOptions(cache=False))

    compared = _compare_runs(theirs, ours)
    assert compared >= 2, f"only {compared} files compared"


def test_every_catalogue_pipeline_is_compared() -> None:
    compared = [entry if isinstance(entry, str) else entry.values[0] for entry in CATALOGUE]
    assert sorted(builtin_pipelines()) == sorted(compared)


def _compare_runs(theirs: LocalRun, ours: LocalRun) -> int:
    files = sorted(path.relative_to(theirs.run_dir) for path in theirs.run_dir.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(ours.run_dir) for path in ours.run_dir.rglob("*") if path.is_file())
    for relative in files:
        _assert_same(relative, theirs.run_dir / relative, ours.run_dir / relative, (theirs.run_dir, ours.run_dir))
    return len(files)


def _assert_same(relative: Path, theirs: Path, ours: Path, run_dirs: tuple[Path, Path]) -> None:
    if relative.name == "job_handle" or _is_job_handle(theirs):  # the output, and the launcher's copies
        assert json.loads(theirs.read_text())["backend"] == json.loads(ours.read_text())["backend"], relative
    elif relative.name == "checkpoint.pt":
        assert _checkpoint(theirs) == _checkpoint(ours), relative
    elif zipfile.is_zipfile(theirs):
        assert _zip_members(theirs) == _zip_members(ours), relative
    elif relative.suffix == ".json":  # executor outputs and a training job's config name the run's folders
        assert _without_run_dir(theirs, run_dirs[0]) == _without_run_dir(ours, run_dirs[1]), relative
    elif relative.suffix in (".jsonl", ".log"):  # a training job's log: one JSON line per epoch, with its timing
        assert _log_lines(theirs, run_dirs[0]) == _log_lines(ours, run_dirs[1]), relative
    else:  # a leaderboard names the models it ranks by path: their run folders differ
        mine, other = (str(run_dir).encode() for run_dir in run_dirs)
        assert theirs.read_bytes().replace(mine, b"RUN") == ours.read_bytes().replace(other, b"RUN"), relative


def _is_job_handle(path: Path) -> bool:
    """A launcher's JSON record of the job it started (its process id and scratch folder differ per run)."""
    if path.suffix != ".json":
        return False
    record = json.loads(path.read_text())
    return isinstance(record, dict) and set(record) == {field.name for field in dataclasses.fields(JobHandle)}


def _without_run_dir(path: Path, run_dir: Path) -> Any:
    return _timeless(json.loads(path.read_text().replace(str(run_dir), "RUN")))


def _zip_members(path: Path) -> dict[str, Any]:
    """A TorchScript archive's members: tensors byte for byte; generated code line by line in any order
    (TorchScript lists a module's constants in the order of a set, which differs between interpreters
    even under kfp.local alone); the random id each save draws, and the code's debug source ranges,
    left out."""
    with zipfile.ZipFile(path) as archive:
        members: dict[str, Any] = {}
        for info in archive.infolist():
            name = info.filename.split("/", 1)[-1]
            if name.endswith(("serialization_id", ".debug_pkl")):  # debug_pkl: source ranges of that code
                continue
            data = archive.read(info)
            members[name] = sorted(data.decode().splitlines()) if name.startswith("code/") else data
        return members


def _checkpoint(path: Path) -> Any:
    """A training checkpoint's contents, tensors as bytes, without the timings its epoch history records."""
    import torch

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return (str(value.dtype), tuple(value.shape), value.cpu().numpy().tobytes())
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return _timeless(plain(torch.load(path, weights_only=True, map_location="cpu")))


def _log_lines(path: Path, run_dir: Path) -> list[Any]:
    """JSON lines without their timings; any other line as text, with the run folder's name taken out."""
    lines: list[Any] = []
    for line in path.read_text().replace(str(run_dir), "RUN").splitlines():
        try:
            lines.append(_timeless(json.loads(line)))
        except ValueError:
            lines.append(line)
    return lines


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _timeless(item) for key, item in value.items() if not _TIME_KEY.search(key)}
    if isinstance(value, list):
        return [_timeless(item) for item in value]
    return value
