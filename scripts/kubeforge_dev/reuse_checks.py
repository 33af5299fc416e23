"""Checks that keep every component safe to reuse: versions and images follow the package.

A component's version is the package's: its compiled component.yaml must run the image tagged
with `kubeforge.__version__`, and its metadata.yaml's `kubeforge` dependency range must admit
that version (a `version` key, if a component has one, must equal it). Staleness of the
generated component.yaml and README is checked by `catalog_build.stale_generated`, which
also runs these checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from kubeforge import IMAGE, __version__


def version_problems(folder: Path) -> list[str]:
    """Problems with one component folder's version and image (empty when it follows the package)."""
    problems: list[str] = []
    metadata: dict[str, Any] = yaml.safe_load((folder / "metadata.yaml").read_text()) or {}
    if "version" in metadata and str(metadata["version"]) != __version__:
        problems.append(
            f"{folder}/metadata.yaml: version {metadata['version']!r} differs from the package version "
            f"{__version__!r}; remove the key (components take the package's version)"
        )
    declared = str((metadata.get("dependencies") or {}).get("kubeforge", ""))
    try:
        if not declared or Version(__version__) not in SpecifierSet(declared.split(" ")[0]):
            problems.append(
                f"{folder}/metadata.yaml: dependencies.kubeforge {declared!r} does not admit the package version "
                f"{__version__}; widen or move the range"
            )
    except InvalidSpecifier:
        problems.append(f"{folder}/metadata.yaml: dependencies.kubeforge {declared!r} is not a version range")
    spec_file = folder / "component.yaml"
    if spec_file.is_file():
        executors = yaml.safe_load(spec_file.read_text()).get("deploymentSpec", {}).get("executors", {})
        for executor, body in executors.items():
            image = body.get("container", {}).get("image")
            if image != IMAGE:
                problems.append(f"{spec_file}: executor {executor} runs {image!r}, not {IMAGE!r}; run `make compile`")
    return problems


__all__ = ["version_problems"]
