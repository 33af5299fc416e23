"""`kubeforge infra` end to end with the real terraform binary (1.0.3 from .tools) on a provider-free root."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from infra_tools import REPO, TERRAFORM, require

from kubeforge.cli import cli
from kubeforge.errors import InfraError
from kubeforge.infra.binary import check_terraform
from kubeforge.infra.config import load_config

pytestmark = pytest.mark.infra
FIXTURE = REPO / "tests" / "infra" / "fixtures" / "provider_free"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture root, KUBEFORGE_HOME in the temp dir and the real terraform binary."""
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBEFORGE_TERRAFORM", str(require(TERRAFORM)))
    return Path(shutil.copytree(FIXTURE, tmp_path / "root"))


def _infra(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["infra", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_plan_up_output_down(root: Path, tmp_path: Path) -> None:
    common = ["--target", "local", "--dir", str(root), "--var", "cluster_name=demo"]
    code, text = _infra("plan", *common)
    assert code == 0, text
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in text
    assert "output   kfp_endpoint" in text

    # Declining the confirmation applies nothing and records nothing.
    code, text = _infra("up", *common, input="n\n")
    assert code == 1 and "Aborted" in text
    assert not (root / "terraform.tfstate").exists()
    assert load_config() == {}

    code, text = _infra("up", *common, "--yes")
    assert code == 0, text
    config = load_config()
    assert config["target"] == "local"
    assert config["kfp_endpoint"] == "http://demo.kfp.invalid:8080"
    assert config["artifact_root"] == "s3://demo-artifacts/pipelines"
    assert config["image_registry"] == "localhost:5001"
    kubeconfig = Path(config["kubeconfig"])
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "demo"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600

    code, text = _infra("output", *common, "--json")
    assert code == 0, text
    assert json.loads(text)["artifact_root"] == "s3://demo-artifacts/pipelines"

    code, text = _infra("down", *common, "--yes")
    assert code == 0, text
    assert load_config() == {}
    state = json.loads((root / "terraform.tfstate").read_text())
    assert state["outputs"] == {} and state["resources"] == []


def test_var_file_reaches_terraform(root: Path, tmp_path: Path) -> None:
    var_file = tmp_path / "fixture.tfvars"
    var_file.write_text('cluster_name = "from-file"\n')
    code, text = _infra("up", "--target", "aws", "--dir", str(root), "--var-file", str(var_file), "--yes")
    assert code == 0, text
    assert load_config()["kfp_endpoint"] == "http://from-file.kfp.invalid:8080"


def test_down_of_another_target_keeps_the_recorded_cluster(root: Path) -> None:
    assert _infra("up", "--target", "gcp", "--dir", str(root), "--yes")[0] == 0
    other = root.parent / "other"
    shutil.copytree(FIXTURE, other)
    code, text = _infra("down", "--target", "local", "--dir", str(other), "--yes")
    assert code == 0, text
    assert load_config()["target"] == "gcp"


def test_terraform_error_is_one_infra_error(root: Path) -> None:
    (root / "broken.tf").write_text('output "x" {\n  value = var.undeclared\n}\n')
    with pytest.raises(InfraError, match=r"terraform plan failed with exit code 1:[\s\S]*undeclared"):
        _infra("plan", "--target", "local", "--dir", str(root))


def test_old_terraform_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "terraform"
    old.write_text('#!/bin/sh\necho \'{"terraform_version": "0.12.31"}\'\n')
    old.chmod(0o755)
    with pytest.raises(InfraError, match=r"version 0\.12\.31; kubeforge needs >= 1\.0\.0"):
        check_terraform(old)


def test_bundled_terraform_is_recent_enough() -> None:
    assert check_terraform(require(TERRAFORM)).startswith("1.")
