"""The component catalogue: every components/<stage>/<name>/ folder with a metadata.yaml."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

STABILITY_LEVELS = ("experimental", "alpha", "beta", "stable")


@dataclass(frozen=True)
class ComponentEntry:
    """One component of the catalogue, as described by its metadata.yaml."""

    stage: str
    name: str
    metadata: dict[str, Any]
    folder: Traversable

    @property
    def key(self) -> str:
        """`stage/name`, the component's address in the catalogue."""
        return f"{self.stage}/{self.name}"

    @property
    def module(self) -> str:
        """The importable package of the component."""
        return f"kubeforge.components.{self.stage}.{self.name}"

    @property
    def spec(self) -> Traversable:
        """The compiled component.yaml, loadable with kfp.components.load_component_from_file."""
        return self.folder / "component.yaml"


def list_components() -> list[ComponentEntry]:
    """Every component shipped in the installed package, sorted by stage and name."""
    root = resources.files("kubeforge.components")
    entries: list[ComponentEntry] = []
    for stage in sorted(root.iterdir(), key=lambda t: t.name):
        if not stage.is_dir() or stage.name.startswith(("_", ".")):
            continue
        for folder in sorted(stage.iterdir(), key=lambda t: t.name):
            metadata_file = folder / "metadata.yaml"
            if folder.is_dir() and metadata_file.is_file():
                metadata = yaml.safe_load(metadata_file.read_text())
                entries.append(ComponentEntry(stage.name, folder.name, metadata, folder))
    return entries


def lazy_op(package: str, op_name: str, function: str) -> Callable[[str], Any]:
    """A module `__getattr__` exporting a component's KFP op, imported on first use.

    A component package's pure `core` module thus imports without kfp; the KFP definition
    (`component.py`, which imports kfp) loads only when `op_name` is asked for.
    """

    def __getattr__(name: str) -> Any:
        if name == op_name:
            return getattr(importlib.import_module(f"{package}.component"), function)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__all__ = ["STABILITY_LEVELS", "ComponentEntry", "lazy_op", "list_components"]
