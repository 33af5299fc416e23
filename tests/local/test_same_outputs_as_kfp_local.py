"""Every catalogue pipeline gives the same outputs through kubeforge's runner as through kfp.local's.

Each pipeline runs once through kfp.local's SubprocessRunner and once through kubeforge's runner,
on the smallest settings that still exercise every task (one worker, one epoch, gates set so
nothing is deployed), seeded as the components seed themselves. Every file of every task is
compared: datasets, predictions and reports byte for byte; JSON without the keys that hold a
wall-clock reading; TorchScript archives member by member (see _zip_members);
executor outputs and reports with the run folder's name taken out (and the metrics' timings);
a training job's handle (the process id and scratch folder of that run) by its backend only.
"""

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from kfp import local
from prepared_data import PreparedData
from sklearn.datasets import load_diabetes, load_digits

from kubeforge.catalog.pipelines import builtin_pipelines, load_pipeline
from kubeforge.local.report import REPORT_FILE
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import LocalRun, run_pipeline_locally

_TIME_KEY = re.compile(r"(^|_)(seconds|per_second|time|timestamp|started|finished|created)($|_)")
_IMPOSSIBLE_GATE = '{"log_loss": 0.0001}'

RUN_REPORT = Path(REPORT_FILE)


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
    own = sorted(path.relative_to(ours.run_dir) for path in ours.run_dir.rglob("*") if path.is_file())
    assert files == [path for path in own if path != RUN_REPORT]  # the run report is kubeforge's own addition
    for relative in files:
        _assert_same(relative, theirs.run_dir / relative, ours.run_dir / relative, (theirs.run_dir, ours.run_dir))
    return len(files)


def _assert_same(relative: Path, theirs: Path, ours: Path, run_dirs: tuple[Path, Path]) -> None:
    if relative.name == "executor_output.json":
        assert _without_run_dir(theirs, run_dirs[0]) == _without_run_dir(ours, run_dirs[1]), relative
    elif relative.name == "job_handle" or _is_job_handle(theirs):  # names its own process and run folder
        assert json.loads(theirs.read_text())["backend"] == json.loads(ours.read_text())["backend"], relative
    elif relative.parent.name == "checkpoints":
        assert _checkpoint_state(theirs) == _checkpoint_state(ours), relative
    elif zipfile.is_zipfile(theirs):
        assert _zip_members(theirs) == _zip_members(ours), relative
    elif relative.suffix == ".json":  # a run's config names its places inside the run folder
        assert _without_run_dir(theirs, run_dirs[0]) == _without_run_dir(ours, run_dirs[1]), relative
    elif relative.suffix in (".jsonl", ".log"):  # a job's log: its progress lines, each with its own seconds
        assert _json_lines(theirs, run_dirs[0]) == _json_lines(ours, run_dirs[1]), relative
    else:  # a leaderboard names the models it ranks by path: their run folders differ
        mine, other = (str(run_dir).encode() for run_dir in run_dirs)
        assert theirs.read_bytes().replace(mine, b"RUN") == ours.read_bytes().replace(other, b"RUN"), relative


def _is_job_handle(path: Path) -> bool:
    """The launch layer's record of a job (handle.json, local_job.json): backend, id, name, details."""
    if path.suffix != ".json":
        return False
    document = json.loads(path.read_text())
    return isinstance(document, dict) and {"backend", "id", "name"} <= document.keys()


def _without_run_dir(path: Path, run_dir: Path) -> Any:
    return _timeless(json.loads(path.read_text().replace(str(run_dir), "RUN")))


def _checkpoint_state(path: Path) -> Any:
    """A training checkpoint's state: tensors byte for byte, its history without the wall times."""

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return (str(value.dtype), tuple(value.shape), value.numpy().tobytes())
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items() if not _TIME_KEY.search(str(key))}
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        return value

    return plain(torch.load(path, weights_only=True, map_location="cpu"))


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


def _json_lines(path: Path, run_dir: Path) -> list[Any]:
    text = path.read_text().replace(str(run_dir), "RUN")
    return [_timeless(_json_or_text(line)) for line in text.splitlines() if line.strip()]


def _json_or_text(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return line


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _timeless(item) for key, item in value.items() if not _TIME_KEY.search(key)}
    if isinstance(value, list):
        return [_timeless(item) for item in value]
    return value
