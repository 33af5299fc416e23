"""The study's parameters, its storage (SQLite beside the outputs, or PostgreSQL) and its sampler and pruner."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna

from kubeforge.errors import InputError
from kubeforge.launch import SHARED_FILESYSTEM_BACKENDS
from kubeforge.training.curves import lower_is_better

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
METRICS = ("val_loss", "val_accuracy", "val_rmse")
MAX_TRIALS = 1000
STUDY_FILE = "study.db"


@dataclass(frozen=True)
class TuneParams:
    """The component's parameters: the search, its budget and where trials run."""

    search_space: str
    n_trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    startup_trials: int = 2
    metric: str = "val_loss"
    epochs: int = 10
    seed: int = 42
    fixed_params: str = "{}"
    backend: str = "local"
    backend_options: str = "{}"
    workers: int = 1
    parallel_trials: int = 1
    storage_url: str = ""
    study_name: str = ""

    def __post_init__(self) -> None:
        checks = {
            "sampler": (self.sampler in SAMPLERS, f"one of {', '.join(SAMPLERS)}"),
            "pruner": (self.pruner in PRUNERS, f"one of {', '.join(PRUNERS)}"),
            "metric": (self.metric in METRICS, f"one of {', '.join(METRICS)}"),
            "backend": (
                self.backend in SHARED_FILESYSTEM_BACKENDS,
                f"one of {', '.join(SHARED_FILESYSTEM_BACKENDS)} (trials share this task's filesystem)",
            ),
            "n_trials": (1 <= self.n_trials <= MAX_TRIALS, f"1 to {MAX_TRIALS}"),
            "epochs": (self.epochs >= 1, "at least 1"),
            "startup_trials": (self.startup_trials >= 0, "0 or more"),
            "workers": (1 <= self.workers <= 64, "1 to 64"),
            "parallel_trials": (1 <= self.parallel_trials <= 64, "1 to 64"),
        }
        for name, (ok, valid) in checks.items():
            if not ok:
                raise InputError(f"{name} is {getattr(self, name)!r}; it must be {valid}")

    def json_object(self, name: str) -> dict[str, Any]:
        """The JSON object parameter `name` (fixed_params, backend_options), errors naming it."""
        try:
            value = json.loads(getattr(self, name) or "{}")
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}: not valid JSON ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise InputError(f"{name}: expected a JSON object")
        return value

    @property
    def direction(self) -> str:
        """Whether the study minimises (losses, errors) or maximises the metric."""
        return "minimize" if lower_is_better(self.metric) else "maximize"


def storage_url(params: TuneParams, study_dir: Path) -> str:
    """SQLite in the study folder by default; a PostgreSQL URL is taken without a password (libpq reads
    PGPASSWORD or .pgpass), so no secret lands in the run's parameters."""
    if not params.storage_url:
        study_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{study_dir / STUDY_FILE}"
    parts = urlsplit(params.storage_url)
    if parts.scheme not in ("postgresql", "postgresql+psycopg"):
        raise InputError(
            "storage_url: expected postgresql://USER@HOST:PORT/DATABASE (empty: SQLite beside the outputs)"
        )
    if parts.password is not None or "password=" in parts.query:
        raise InputError(
            "storage_url carries a password, and pipeline parameters are stored in plain text with the run; "
            "remove it and set PGPASSWORD (mounted from a Kubernetes secret) or use .pgpass"
        )
    return "postgresql+psycopg" + params.storage_url[len(parts.scheme) :]


def study_key(params: TuneParams, study_dir: Path) -> str:
    """The study's name: given, or derived from the task's outputs so that a retried task finds it."""
    return params.study_name or "kubeforge-" + hashlib.sha256(str(study_dir).encode()).hexdigest()[:16]


@contextmanager
def opened_study(params: TuneParams, study_dir: Path, grid: dict[str, list[Any]] | None) -> Iterator[optuna.Study]:
    """Create the study, or load it when a previous attempt of this task left it (its trials are kept);
    the storage's connections are closed on leaving (the study reconnects if used afterwards)."""
    try:
        storage = optuna.storages.RDBStorage(storage_url(params, study_dir))
    except Exception as exc:  # sqlalchemy's errors: an unreachable or refused database
        raise InputError(f"storage_url: cannot open the study storage ({type(exc).__name__}: {exc})"[:500]) from None
    try:
        yield optuna.create_study(
            storage=storage,
            study_name=study_key(params, study_dir),
            sampler=_sampler(params, grid),
            pruner=_pruner(params),
            direction=params.direction,
            load_if_exists=True,
        )
    finally:
        storage.engine.dispose()


def _sampler(params: TuneParams, grid: dict[str, list[Any]] | None) -> optuna.samplers.BaseSampler:
    if params.sampler == "grid":
        assert grid is not None
        return _AskAndTellGrid(grid, seed=params.seed)
    if params.sampler == "random":
        return optuna.samplers.RandomSampler(seed=params.seed)
    if params.sampler == "cmaes":
        with warnings.catch_warnings():  # categorical fields are drawn independently; said in the README
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(
                seed=params.seed, n_startup_trials=params.startup_trials, warn_independent_sampling=False
            )
    return optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=max(params.startup_trials, 1))


class _AskAndTellGrid(optuna.samplers.GridSampler):
    """The grid sampler without its stop call when the grid is exhausted (that call is refused outside
    `study.optimize`); the tuner caps its trial budget at the grid's size instead."""

    def after_trial(self, *_: Any) -> None:
        """Nothing to do: the tuner's budget ends the study."""


def _pruner(params: TuneParams) -> optuna.pruners.BasePruner:
    if params.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=params.startup_trials, n_warmup_steps=0)
    if params.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=params.epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


__all__ = ["METRICS", "PRUNERS", "SAMPLERS", "STUDY_FILE", "TuneParams", "opened_study", "storage_url", "study_key"]
