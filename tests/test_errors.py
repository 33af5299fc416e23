"""kubeforge.errors holds every error class with its exit code; the report hook is the task processes' alone."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kubeforge import errors
from kubeforge.errors import KubeforgeError, StoreError
from kubeforge.scheduler.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [ROOT / "src" / "kubeforge", ROOT / "components", ROOT / "pipelines"]
ERRORS_MODULE = ROOT / "src" / "kubeforge" / "errors.py"


def _error_classes() -> dict[str, type[KubeforgeError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, KubeforgeError)
    }


def test_no_error_class_is_defined_outside_the_errors_module() -> None:
    names = set(_error_classes())
    elsewhere = []
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            if path == ERRORS_MODULE:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(base).split(".")[-1] in names for base in node.bases
                ):
                    elsewhere.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not elsewhere, elsewhere


def test_every_exit_code_is_in_the_table_and_distinct() -> None:
    table = dict(re.findall(r"^\| (\d+) \| (\w+) \|", errors.__doc__ or "", re.MULTILINE))
    classes = _error_classes()
    documented = {name: int(code) for code, name in table.items()}
    own_code = {name: cls.exit_code for name, cls in classes.items() if "exit_code" in vars(cls)}
    assert documented == own_code
    assert len(set(own_code.values())) == len(own_code)
    for name, cls in classes.items():  # the rest inherit a documented family's code
        assert cls.exit_code in documented.values(), name
    assert set(errors.__all__) >= set(classes)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment, check=False
    )


def test_importing_kubeforge_or_its_cli_leaves_the_excepthook_alone(tmp_path: Path) -> None:
    code = "import sys; before = sys.excepthook; import kubeforge, kubeforge.cli, kubeforge.errors; "
    code += "print(sys.excepthook is before)"
    result = _python(code, KUBEFORGE_ERROR_REPORT_DIR=str(tmp_path))
    assert result.stdout.strip() == "True", result.stderr


def test_a_task_process_reports_its_kubeforge_error(tmp_path: Path) -> None:
    code = "import kubeforge.components; from kubeforge.errors import InputError; raise InputError('label: missing')"
    result = _python(code, KUBEFORGE_ERROR_REPORT_DIR=str(tmp_path))
    assert result.returncode == 1
    assert "InputError: label: missing" in result.stderr
    reports = errors.read_error_reports(tmp_path)
    assert reports == [{"type": "InputError", "message": "label: missing", "exit_code": 2}]
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["type"] == "InputError"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_postgresql_store_is_a_store_error_not_bad_input() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://kubeforge@127.0.0.1:{_closed_port()}/jobs"
    with pytest.raises(StoreError, match="job store is unavailable") as raised:
        open_store(url)
    assert not isinstance(raised.value, errors.InputError)
    result = subprocess.run(
        [sys.executable, "-c", "from kubeforge.cli import main; main()", "queue", "serve", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == StoreError.exit_code == 11, result.stderr
    assert result.stderr.startswith("error: the job store is unavailable")
