"""Experiment tracking with MLflow: one training run -> one MLflow run, found again by its Model artifact.

`log_training_run` records a finished training run: its parameters, the per-epoch metrics of the
model's `metrics_history.jsonl`, the training-curve PNG and the whole Model artifact folder (under
`model/`), tagged with the KFP run and task when the environment names them. The run is tagged with
the Model artifact's URI, so a re-run of the same task finds its finished MLflow run instead of
logging a second one (an unfinished one is deleted and logged again).

With no tracking URI (the parameter empty and `MLFLOW_TRACKING_URI` unset) nothing is logged.
mlflow is imported only when tracking is on (the `tracking` extra).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kubeforge.errors import InputError, TrackingError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
ARTIFACT_TAG = "kubeforge.model_uri"
MODEL_ARTIFACT_PATH = "model"
CURVE_FILE = "training_curve.png"
HISTORY_FILE = "metrics_history.jsonl"
KFP_TAGS = {"KFP_RUN_NAME": "kfp.run_name", "KFP_RUN_ID": "kfp.run_id", "KFP_TASK_NAME": "kfp.task_name"}
"""Environment variables naming the KFP run and task (set on the task, e.g. from the pod's annotations)."""
PROBE_TIMEOUT_S = 5.0
UNLOGGED_PARAM_WORDS = ("options", "token", "secret", "password", "credential")
"""Parameters whose name holds one of these words may carry secrets: never sent to the tracking server."""


def resolve_tracking_uri(tracking_uri: str, environ: Mapping[str, str] | None = None) -> str:
    """The tracking URI to use: the parameter, else `MLFLOW_TRACKING_URI`, else '' (tracking off)."""
    env = os.environ if environ is None else environ
    return tracking_uri.strip() or env.get(TRACKING_URI_ENV, "").strip()


def redact(uri: str) -> str:
    """The URI without credentials in its netloc, safe for messages and logs."""
    parts = urlsplit(uri)
    if not parts.password and not parts.username:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def require_reachable(tracking_uri: str) -> None:
    """Refuse, with the fix named, an http(s) tracking server that does not answer `/health` promptly."""
    if urlsplit(tracking_uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracking_uri: the MLflow tracking server at {redact(tracking_uri)} cannot be reached ({reason}); "
            "start it (`mlflow server`), fix tracking_uri or MLFLOW_TRACKING_URI, or set tracking_required=false "
            "to continue without tracking"
        ) from None


def connect_registry(tracking_uri: str) -> tuple[str, Any]:
    """The tracking URI in use and an MlflowClient on it (tracking and registry), checked reachable.

    `tracking_uri` '' falls back to `MLFLOW_TRACKING_URI`; neither set raises an InputError naming the field.
    """
    uri = resolve_tracking_uri(tracking_uri)
    if not uri:
        raise InputError(f"tracking_uri: empty and {TRACKING_URI_ENV} unset; give the MLflow server's URL")
    require_reachable(uri)
    from mlflow.tracking import MlflowClient

    return uri, MlflowClient(tracking_uri=uri, registry_uri=uri)


def mlflow_error() -> type[Exception]:
    """MLflow's exception class (imported only when tracking is on)."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def log_training_run(
    tracking_uri: str,
    model_dir: str | Path,
    model_uri: str,
    params: Mapping[str, Any] | None = None,
    experiment: str = "kubeforge",
    required: bool = True,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Log a finished training run to MLflow; returns metadata for the Model artifact ({} when off or skipped).

    `tracking_uri` '' falls back to `MLFLOW_TRACKING_URI`; neither set -> nothing happens. An unreachable
    server raises `TrackingError` when `required`, else warns and returns {}.
    """
    env = os.environ if environ is None else environ
    uri = resolve_tracking_uri(tracking_uri, env)
    if not uri:
        return {}
    try:
        require_reachable(uri)
        return _log(uri, Path(model_dir), params or {}, model_uri, experiment, env)
    except TrackingError as exc:
        if required:
            raise
        warnings.warn(f"{exc}; training continues without tracking", RuntimeWarning, stacklevel=2)
        return {}


def _log(
    uri: str, model_dir: Path, params: Mapping[str, Any], model_uri: str, experiment: str, env: Mapping[str, str]
) -> dict[str, str]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        experiment_id = _experiment_id(client, experiment)
        finished = _existing_run(client, experiment_id, model_uri)
        if finished is not None:
            return _metadata(uri, experiment_id, finished)
        tags = {ARTIFACT_TAG: model_uri, **{tag: env[var] for var, tag in KFP_TAGS.items() if env.get(var)}}
        run = client.create_run(experiment_id, tags=tags, run_name=env.get("KFP_TASK_NAME") or None)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        history = _history(model_dir / HISTORY_FILE)
        metrics = [
            Metric(key, float(value), now, int(row["epoch"]))
            for row in history
            for key, value in row.items()
            if key != "epoch" and isinstance(value, int | float)
        ]
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(key, str(value)[:500]) for key, value in sorted(params.items()) if _loggable(key)],
            tags=[RunTag("kubeforge.epochs", str(len(history)))],
        )
        if (model_dir / CURVE_FILE).is_file():
            client.log_artifact(run_id, str(model_dir / CURVE_FILE))
        client.log_artifacts(run_id, str(model_dir), artifact_path=MODEL_ARTIFACT_PATH)
        client.set_terminated(run_id, "FINISHED")
    except MlflowException as exc:
        raise TrackingError(
            f"tracking_uri: the MLflow server at {redact(uri)} refused the run: {exc.message}"
        ) from None
    return _metadata(uri, experiment_id, run_id)


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return str(found.experiment_id) if found is not None else str(client.create_experiment(name))


def _existing_run(client: Any, experiment_id: str, model_uri: str) -> str | None:
    """The finished run already logged for this Model artifact, if any; unfinished ones are deleted."""
    quoted = model_uri.replace("'", "\\'")
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{ARTIFACT_TAG}` = '{quoted}'")
    for run in runs:
        if run.info.status == "FINISHED":
            return str(run.info.run_id)
        client.delete_run(run.info.run_id)
    return None


def _loggable(param: str) -> bool:
    return not any(word in param.lower() for word in UNLOGGED_PARAM_WORDS)


def _history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _metadata(uri: str, experiment_id: str, run_id: str) -> dict[str, str]:
    return {"mlflow_tracking_uri": redact(uri), "mlflow_experiment_id": experiment_id, "mlflow_run_id": run_id}


__all__ = [
    "TRACKING_URI_ENV",
    "TrackingError",
    "connect_registry",
    "log_training_run",
    "mlflow_error",
    "redact",
    "require_reachable",
    "resolve_tracking_uri",
]
