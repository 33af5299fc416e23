"""terraform/ with the real tools: `terraform fmt -check`, structural checks (python-hcl2), generated README
tables, and checkov with zero failed checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from infra_tools import CHECKOV, REPO, TERRAFORM, require

from kubeforge_dev.hcl_checks import check_tree

pytestmark = pytest.mark.infra
TERRAFORM_DIR = REPO / "terraform"


@pytest.mark.parametrize(
    "folder", [TERRAFORM_DIR, REPO / "tests" / "infra" / "fixtures"], ids=["terraform", "fixtures"]
)
def test_fmt_check(folder: Path) -> None:
    result = subprocess.run(
        [require(TERRAFORM), "fmt", "-check", "-recursive", "-no-color", str(folder)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"unformatted: {result.stdout}{result.stderr}"


def test_every_module_and_env_is_structurally_sound() -> None:
    assert check_tree(TERRAFORM_DIR) == []


def test_structural_checks_catch_broken_wiring(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(TERRAFORM_DIR, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform")))
    variables = tree / "modules" / "eks" / "variables.tf"
    variables.write_text(variables.read_text().replace('  description = "Tags added to every resource."\n', ""))
    env = tree / "envs" / "aws" / "main.tf"
    text = env.read_text()
    text = text.replace("  name                   = var.name\n", "  name                   = var.name\n  flavour = 1\n")
    text = text.replace("module.eks.artifact_root\n", "module.eks.artifact_bucket_uri\n")
    env.write_text(text)
    readme = tree / "modules" / "gke" / "README.md"
    readme.write_text(readme.read_text().replace("`project_id`", "`project`"))
    problems = "\n".join(check_tree(tree))
    assert "variable 'tags' has no description" in problems
    assert "module 'eks' passes 'flavour'" in problems
    assert "module.eks.artifact_bucket_uri is referenced" in problems
    assert "gke/README.md: the inputs/outputs tables are stale" in problems

    main = tree / "envs" / "gcp" / "main.tf"
    main.write_text(main.read_text().replace("  kms_key_name            = var.kms_key_name\n", ""))
    assert any("does not pass required variable 'kms_key_name'" in problem for problem in check_tree(tree))


def test_checkov_passes_terraform() -> None:
    result = subprocess.run(
        [
            require(CHECKOV),
            "--skip-download",
            "--quiet",
            "--compact",
            "--framework",
            "terraform",
            "-d",
            str(TERRAFORM_DIR),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
