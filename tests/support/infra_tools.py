"""The real infrastructure tools the infra tests run (installed into .tools/ by `make tools`), and moto's server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kubeforge_dev.provider_schemas import find_provider_mirror

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
TERRAFORM = TOOLS / "bin" / "terraform"
HELM = TOOLS / "bin" / "helm"
CHECKOV = TOOLS / "checkov" / "bin" / "checkov"
CRDS = REPO.parent / "shared" / "crds"
MIRROR_ENV = "KUBEFORGE_PROVIDER_MIRROR"
MIRROR_CACHE = TOOLS / "provider-mirror"


def require(tool: Path) -> Path:
    """`tool`, or skip the test saying how to install it."""
    if not tool.is_file():
        pytest.skip(f"{tool.relative_to(REPO)} is not installed; run `make tools`")
    return tool


def provider_mirror() -> Path:
    """The filesystem mirror holding hashicorp/aws, or skip.

    $KUBEFORGE_PROVIDER_MIRROR names it; otherwise the machine is searched once for a folder
    holding registry.terraform.io/hashicorp/aws (as a machine image with a mirror provides),
    and the answer is remembered under .tools/.
    """
    mirror = find_provider_mirror(MIRROR_CACHE, os.environ.get(MIRROR_ENV, ""))
    if mirror is None:
        pytest.skip(f"no filesystem mirror with the hashicorp/aws provider found; set {MIRROR_ENV} to one")
    return mirror


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's AWS server on loopback (with AWS managed IAM policies loaded); yields its URL, stops it by PID."""
    port = _free_port()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        pytest.skip("moto_server is not installed; pip install 'moto[server]'")
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
