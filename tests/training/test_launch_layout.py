"""The launch layer's place among the packages: no package cycle between launch, training and scheduler."""

from __future__ import annotations

import ast
from pathlib import Path

import kubeforge

SOURCE = Path(kubeforge.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _package_imports(package: str) -> dict[str, set[str]]:
    return {str(path.relative_to(SOURCE)): _imports(path) for path in (SOURCE / package).rglob("*.py")}


def test_training_engine_does_not_import_the_launch_layer() -> None:
    for module, imports in _package_imports("training").items():
        assert not {name for name in imports if name.startswith("kubeforge.launch")}, module


def test_launch_reaches_the_scheduler_only_through_its_client() -> None:
    for module, imports in _package_imports("launch").items():
        scheduler = {name for name in imports if name.startswith("kubeforge.scheduler")}
        assert scheduler <= {"kubeforge.scheduler.client"}, module
    client = _imports(SOURCE / "scheduler" / "client.py")
    assert not {name for name in client if name.startswith(("kubeforge.launch", "kubeforge.training"))}
