"""Finding the terraform binary and checking that it is recent enough."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from kubeforge import settings
from kubeforge.errors import InfraError

TERRAFORM_ENV = settings.TERRAFORM.name
"""Environment variable naming the terraform binary to use."""

MIN_TERRAFORM_VERSION = (1, 0, 0)
"""The oldest Terraform the modules are written for (no optional(), moved or check blocks)."""

_INSTALL_HINT = "run `make tools` (installs Terraform 1.0.3 into .tools/bin) or install terraform >= 1.0"


def find_terraform(explicit: str | Path | None = None, project_root: Path | None = None) -> Path:
    """The terraform binary: `explicit`, else $KUBEFORGE_TERRAFORM, else .tools/bin/terraform, else PATH."""
    candidate = explicit or settings.TERRAFORM.read()
    if candidate:
        path = Path(candidate)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InfraError(f"terraform: {path} is not an executable file; {_INSTALL_HINT}")
        return path
    if project_root is not None:
        bundled = project_root / ".tools" / "bin" / "terraform"
        if bundled.is_file():
            return bundled
    found = shutil.which("terraform")
    if found is None:
        raise InfraError(f"terraform: not found on PATH nor in .tools/bin; {_INSTALL_HINT}")
    return Path(found)


def terraform_version(binary: Path) -> tuple[int, int, int]:
    """The version of `binary`, read from `terraform version -json`."""
    try:
        result = subprocess.run(
            [str(binary), "version", "-json"], capture_output=True, text=True, timeout=60, check=True
        )
        text = json.loads(result.stdout)["terraform_version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        raise InfraError(f"terraform: cannot read the version of {binary} ({exc}); {_INSTALL_HINT}") from exc
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        raise InfraError(f"terraform: {binary} reports an unreadable version {text!r}; {_INSTALL_HINT}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check_terraform(binary: Path) -> str:
    """Raise InfraError unless `binary` is Terraform >= 1.0; return its version as text."""
    version = terraform_version(binary)
    text = ".".join(str(part) for part in version)
    if version < MIN_TERRAFORM_VERSION:
        wanted = ".".join(str(part) for part in MIN_TERRAFORM_VERSION)
        raise InfraError(f"terraform: {binary} is version {text}; kubeforge needs >= {wanted}; {_INSTALL_HINT}")
    return text


__all__ = ["MIN_TERRAFORM_VERSION", "TERRAFORM_ENV", "check_terraform", "find_terraform", "terraform_version"]
