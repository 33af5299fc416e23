"""`registry/mlflow_fetch`: the Model artifact a registry alias points at, downloaded; no kfp import.

The alias (e.g. `champion`) is resolved to its model version on the MLflow server, and the version's
source (the `model/` folder of the run that tracked the model, see `registry/mlflow`) is downloaded
into the output folder, which is published whole or not at all: a retried task downloads again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubeforge import tracking
from kubeforge.artifacts import atomic_output_dir
from kubeforge.errors import InputError, TrackingError
from kubeforge.model_format import MANIFEST


@dataclass(frozen=True)
class Fetched:
    """The version the alias pointed at when fetched, and where its files came from."""

    name: str
    alias: str
    version: str
    source: str
    run_id: str


def fetch_model(tracking_uri: str, registered_model_name: str, alias: str, output_dir: str | Path) -> Fetched:
    """Download the model version `alias` points at into `output_dir`; InputError when it points nowhere."""
    name, alias = registered_model_name.strip(), alias.strip()
    if not name:
        raise InputError("registered_model_name: empty; give the registry's model name, e.g. tabular-classifier")
    if not alias:
        raise InputError("alias: empty; give the alias that marks the model to fetch, e.g. champion")
    uri, client = tracking.connect_registry(tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except tracking.mlflow_error():
        raise InputError(
            f"alias: registered model {name!r} has no alias {alias!r}; register a version with it first "
            f"(registry/mlflow with aliases={alias!r})"
        ) from None
    fetched = Fetched(name, alias, str(version.version), str(version.source), str(version.run_id or ""))
    _download(uri, fetched, str(output_dir))
    return fetched


def _download(uri: str, fetched: Fetched, output_dir: str) -> None:
    from mlflow.artifacts import download_artifacts

    with atomic_output_dir(output_dir) as folder, tempfile.TemporaryDirectory(prefix="kubeforge-fetch-") as tmp:
        try:
            downloaded = Path(download_artifacts(artifact_uri=fetched.source, dst_path=tmp, tracking_uri=uri))
        except tracking.mlflow_error() as exc:
            raise TrackingError(
                f"alias: version {fetched.version} of {fetched.name!r} ({fetched.alias}) could not be downloaded "
                f"from {tracking.redact(uri)}: {getattr(exc, 'message', exc)}"
            ) from None
        if not (downloaded / MANIFEST).is_file():
            raise InputError(
                f"alias: version {fetched.version} of {fetched.name!r} ({fetched.alias}) is not a kubeforge Model "
                f"artifact (no {MANIFEST} in {fetched.source}); register kubeforge models with registry/mlflow"
            )
        for item in downloaded.iterdir():
            item.rename(folder / item.name)


__all__ = ["Fetched", "fetch_model"]
