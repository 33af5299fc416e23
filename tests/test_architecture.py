"""The layer map of docs/architecture.md holds: import-linter's contracts (pyproject.toml) over src/kubeforge,
and the same rules for components/ and pipelines/, which live outside src/ and are checked here by AST."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src" / "kubeforge"
COMPONENTS = ROOT / "components"
PIPELINES = ROOT / "pipelines"
PIPELINE_IMPORTERS = {"kubeforge.demo"}
"""Library modules allowed to import a built-in pipeline (the demo runs tabular_classifier)."""


def _imports(path: Path, package: str) -> set[str]:
    """Every module `path` imports (for `from M import N`: M), relative imports resolved against `package`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
    return found


def _module_name(path: Path, root: Path, prefix: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([prefix, *parts])


def _package_of(path: Path, root: Path, prefix: str) -> str:
    name = _module_name(path, root, prefix)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def test_import_linter_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_library_never_imports_the_catalogue() -> None:
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        module = _module_name(path, LIBRARY, "kubeforge")
        for imported in _imports(path, _package_of(path, LIBRARY, "kubeforge")):
            if imported.startswith("kubeforge.components") or (
                imported.startswith("kubeforge.pipelines") and module not in PIPELINE_IMPORTERS
            ):
                offenders.append(f"{module} -> {imported}")
    assert not offenders, offenders


def _component_of(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:4]) if len(parts) >= 4 and parts[:2] == ["kubeforge", "components"] else None


@pytest.mark.parametrize("folder", sorted(path.parent for path in COMPONENTS.glob("*/*/component.py")), ids=str)
def test_a_component_imports_no_other_component_and_its_core_no_kfp(folder: Path) -> None:
    own = _module_name(folder / "__init__.py", COMPONENTS, "kubeforge.components")
    for path in folder.rglob("*.py"):
        imported = _imports(path, _package_of(path, COMPONENTS, "kubeforge.components"))
        others = {name for name in imported if _component_of(name) not in (None, own)}
        assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"
        if path.name != "component.py":
            kfp = {name for name in imported if name == "kfp" or name.startswith("kfp.")}
            assert not kfp, f"{path.relative_to(ROOT)} imports {sorted(kfp)}: only component.py may"


def test_a_pipeline_imports_components_not_their_cores() -> None:
    for path in PIPELINES.rglob("*.py"):
        imported = _imports(path, _package_of(path, PIPELINES, "kubeforge.pipelines"))
        cores = {name for name in imported if _component_of(name) not in (None, name)}
        assert not cores, f"{path.relative_to(ROOT)} reaches into {sorted(cores)}; import the package's *_op"


def test_every_package_says_what_it_holds() -> None:
    vague = []
    for root in (LIBRARY, COMPONENTS, PIPELINES):
        for init in root.rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
            if len(summary) < 20 or summary == "kubeforge package.":
                vague.append(f"{init.relative_to(ROOT)}: {summary!r}")
    assert not vague, vague
