"""kubeforge.settings declares every KUBEFORGE_* variable; the README's table is its table; reads happen on use."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from kubeforge import settings
from kubeforge.home import state_dir_path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "kubeforge"
SETTINGS_MODULE = PACKAGE / "settings.py"
_NAME = re.compile(r"(?<![A-Z_])KUBEFORGE_[A-Z_]+")


def test_the_readme_table_is_the_settings_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings.settings_table() in readme


def test_every_variable_the_code_names_is_declared() -> None:
    declared = {setting.name for setting in settings.READ + settings.JOB_ENVIRONMENT}
    named: dict[str, str] = {}
    for root in (PACKAGE, ROOT / "components", ROOT / "pipelines"):
        for path in root.rglob("*.py"):
            for name in _NAME.findall(path.read_text()):
                named.setdefault(name, str(path.relative_to(ROOT)))
    undeclared = {name: path for name, path in named.items() if name not in declared}
    assert not undeclared, undeclared
    assert len(declared) == len(settings.READ) + len(settings.JOB_ENVIRONMENT)


def test_only_settings_names_a_variable_kubeforge_reads() -> None:
    """Every read goes through `kubeforge.settings`: no other module spells a read variable's name
    (the job identity the scheduler sets, `JOB_ENVIRONMENT`, is written where it is set)."""
    read = {setting.name for setting in settings.READ}
    direct = []
    for root in (PACKAGE, ROOT / "components", ROOT / "pipelines"):
        for path in sorted(root.rglob("*.py")):
            if path == SETTINGS_MODULE:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in read:
                    direct.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert not direct, direct


def test_a_taken_variable_leaves_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFORGE_ADMIN_TOKEN", "s3cret")
    assert settings.ADMIN_TOKEN.take() == "s3cret"
    assert "KUBEFORGE_ADMIN_TOKEN" not in os.environ
    assert settings.ADMIN_TOKEN.take() == ""


def test_a_caller_may_require_a_variable_that_has_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEFORGE_SCHEDULER_URL", raising=False)
    assert settings.SCHEDULER_URL.read() == "http://127.0.0.1:8765"
    assert settings.SCHEDULER_URL.read(default="") == ""
    monkeypatch.setenv("KUBEFORGE_SCHEDULER_URL", "https://queue:8765")
    assert settings.SCHEDULER_URL.read(default="") == "https://queue:8765"


def test_values_are_read_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBEFORGE_HOST", raising=False)
    assert settings.HOST.read() == "127.0.0.1"
    monkeypatch.setenv("KUBEFORGE_HOST", "0.0.0.0")
    assert settings.HOST.read() == "0.0.0.0"
    monkeypatch.setenv("KUBEFORGE_HOST", "")
    assert settings.HOST.read() == "127.0.0.1"  # empty counts as unset
    assert settings.HOST.read({"KUBEFORGE_HOST": "10.0.0.1"}) == "10.0.0.1"
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path))
    assert state_dir_path() == tmp_path
    monkeypatch.delenv("KUBEFORGE_HOME")
    assert state_dir_path() == Path.home() / ".kubeforge"
