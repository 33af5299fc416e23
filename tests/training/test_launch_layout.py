"""The launch layer's place among the packages: scheduler above launch above training, no package cycle."""

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


def _reaches(package: str, above: tuple[str, ...]) -> dict[str, set[str]]:
    """Each module of `package` (a folder or one file) with what it imports of the packages in `above`."""
    root = SOURCE / package
    paths = root.rglob("*.py") if root.is_dir() else [root.with_suffix(".py")]
    found = {str(path.relative_to(SOURCE)): _imports(path) for path in paths}
    return {
        module: reached
        for module, imports in found.items()
        if (reached := {name for name in imports if any(name == p or name.startswith(f"{p}.") for p in above)})
    }


def test_the_training_engine_imports_neither_the_launch_layer_nor_the_scheduler() -> None:
    assert _reaches("training", ("kubeforge.launch", "kubeforge.scheduler")) == {}


def test_the_launch_layer_reaches_the_scheduler_only_through_its_client_below_both() -> None:
    assert _reaches("launch", ("kubeforge.scheduler",)) == {}
    assert {name for name in _imports(SOURCE / "launch" / "queue.py") if "scheduler" in name} == {
        "kubeforge.scheduler_client"
    }
    assert _reaches("scheduler_client", ("kubeforge.launch", "kubeforge.training", "kubeforge.scheduler")) == {}


def test_the_shared_types_sit_below_the_launch_layer_and_the_scheduler() -> None:
    assert _reaches("launch/state", ("kubeforge",)) == {}  # the one state enum imports nothing of the project
    assert _reaches("resources", ("kubeforge",)) == {"resources.py": {"kubeforge.errors"}}
