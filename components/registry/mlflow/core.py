"""`registry/mlflow`: register a Model artifact in MLflow's model registry and move aliases, no kfp import.

A Model artifact is registered from the MLflow run that tracked its training (found by the artifact's
URI tag, see `kubeforge.tracking`); an artifact trained without tracking is logged as a run first. A
re-run of the same task finds the version it registered (tagged with the artifact's URI) instead of
adding another. Aliases (`champion`, `challenger`, ...) then point at that version; moving an alias
is how a model is promoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeforge import tracking
from kubeforge.errors import InputError, TrackingError
from kubeforge.model_format import MANIFEST

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Registration:
    """The registered version: the registered model's name, its version, the aliases now on it, its run."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    source: str


def parse_aliases(aliases: str, field: str = "aliases") -> tuple[str, ...]:
    """Comma-separated aliases, checked against MLflow's rules ('latest' and 'v<N>' are reserved)."""
    parsed = tuple(dict.fromkeys(alias.strip() for alias in aliases.split(",") if alias.strip()))
    for alias in parsed:
        if not _ALIAS.match(alias) or _RESERVED_ALIAS.match(alias):
            raise InputError(
                f"{field}: {alias!r} is not a usable alias; use letters, digits, '_' and '-' (not 'latest' or 'v<N>')"
            )
    return parsed


def register_model(
    tracking_uri: str,
    model_dir: str,
    model_uri: str,
    registered_model_name: str,
    aliases: str = "challenger",
    previous_alias: str = "",
) -> Registration:
    """Register the Model artifact at `model_dir` (stored at `model_uri`) as a version; point `aliases` at it.

    With `previous_alias` (e.g. previous_champion), the version that held the first of `aliases` before keeps
    that alias. A retry finds its version and, once the first alias is on it, moves nothing again.
    """
    name = registered_model_name.strip()
    if not name:
        raise InputError("registered_model_name: empty; give the registry's model name, e.g. tabular-classifier")
    wanted = parse_aliases(aliases)
    previous = _previous_alias(previous_alias, wanted)
    if not (Path(model_dir) / MANIFEST).is_file():
        raise InputError(f"model: {model_dir} is not a complete kubeforge Model artifact (no {MANIFEST})")
    uri, client = tracking.connect_registry(tracking_uri)
    run_id = tracking.log_training_run(uri, model_dir, model_uri, required=True)["mlflow_run_id"]
    try:
        version = _existing_version(client, name, model_uri) or _new_version(client, name, run_id, model_uri)
        if previous:
            _keep_previous_holder(client, name, wanted[0], previous, str(version.version))
        for alias in wanted:
            client.set_registered_model_alias(name, alias, version.version)
        current = client.get_model_version(name, version.version)
    except tracking.mlflow_error() as exc:
        raise TrackingError(
            f"registered_model_name: the MLflow registry refused {name!r}: {getattr(exc, 'message', exc)}"
        ) from None
    return Registration(name, str(current.version), tuple(sorted(current.aliases)), run_id, str(current.source))


def _previous_alias(previous_alias: str, wanted: tuple[str, ...]) -> str:
    parsed = parse_aliases(previous_alias, field="previous_alias")
    if not parsed:
        return ""
    previous = parsed[0]
    if len(parsed) > 1 or not wanted or previous in wanted:
        raise InputError(
            f"previous_alias: {previous_alias!r} must be one alias, not among `aliases`, which must name the alias "
            "to move; e.g. aliases='champion', previous_alias='previous_champion'"
        )
    return previous


def _keep_previous_holder(client: Any, name: str, alias: str, previous: str, version: str) -> None:
    """Give `previous` to the version holding `alias`, unless that is `version` already (a finished retry)."""
    holder = _alias_holder(client, name, alias)
    if holder is not None and holder != version:
        client.set_registered_model_alias(name, previous, holder)


def _alias_holder(client: Any, name: str, alias: str) -> str | None:
    aliases = client.get_registered_model(name).aliases
    return str(aliases[alias]) if alias in aliases else None


def _existing_version(client: Any, name: str, model_uri: str) -> Any:
    if client.search_registered_models(filter_string=f"name = '{_quoted(name)}'") == []:
        client.create_registered_model(name)
        return None
    for version in client.search_model_versions(f"name = '{_quoted(name)}'"):
        if version.tags.get(tracking.ARTIFACT_TAG) == model_uri:
            return version
    return None


def _new_version(client: Any, name: str, run_id: str, model_uri: str) -> Any:
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{tracking.MODEL_ARTIFACT_PATH}"
    return client.create_model_version(name, source, run_id=run_id, tags={tracking.ARTIFACT_TAG: model_uri})


def _quoted(value: str) -> str:
    return value.replace("'", "\\'")


__all__ = ["Registration", "parse_aliases", "register_model"]
