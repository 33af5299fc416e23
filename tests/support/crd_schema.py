"""Validating custom resources against the upstream CRD schemas kept in ../shared/crds."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[3] / "shared" / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the large CRDs ~10x faster


def crd_validator(crd_file: str, version: str) -> jsonschema.Draft7Validator:
    """A validator for one version of a CRD; skips the test when the CRD folder is absent."""
    path = CRD_DIR / crd_file
    if not path.is_file():
        pytest.skip(f"CRD schema {path} is absent (../shared/crds ships beside the repository)")
    return _cached_validator(path, path.stat().st_mtime_ns, version)


@functools.lru_cache(maxsize=16)
def _cached_validator(path: Path, _mtime_ns: int, version: str) -> jsonschema.Draft7Validator:
    """Parsed once per file version and CRD version for the whole session (the InferenceService CRD takes seconds)."""
    crd = yaml.load(path.read_text(), Loader=_LOADER)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return jsonschema.Draft7Validator(entry["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{path.name} has no version {version}")


def schema_errors(obj: dict[str, Any], crd_file: str) -> list[str]:
    """Every schema violation of `obj`, as 'path: message' lines (empty when valid)."""
    version = obj["apiVersion"].split("/")[-1]
    validator = crd_validator(crd_file, version)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(obj)]


__all__ = ["CRD_DIR", "crd_validator", "schema_errors"]
