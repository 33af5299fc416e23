"""The container lane: runs only under `make test-containers`, which builds the image first.

`scripts/container_lane.sh` installs podman, builds the Debian bookworm base and the kubeforge
image, and prints the environment these tests read (KUBEFORGE_CONTAINER_IMAGE, CONTAINERS_CONF,
CONTAINERS_STORAGE_CONF). The podman service is started here on a socket in a temporary folder
and stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("KUBEFORGE_CONTAINER_IMAGE"):
        return
    skip = pytest.mark.skip(reason="container lane: run `make test-containers` (builds the image with podman)")
    for item in items:
        if "containers" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def image() -> str:
    """The kubeforge image built by scripts/container_lane.sh."""
    return os.environ["KUBEFORGE_CONTAINER_IMAGE"]


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket; DOCKER_HOST points the docker SDK at it."""
    podman = shutil.which("podman")
    assert podman, "podman is missing: run `make test-containers`, which installs it"
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket}"])
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert service.poll() is None, "podman system service exited; see its output above"
            assert time.monotonic() < deadline, "podman system service did not open its socket in 30 s"
            time.sleep(0.2)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("DOCKER_HOST", f"unix://{socket}")
            yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.fixture
def shared_root(tmp_path: Path) -> Iterator[Path]:
    """A pipeline root the image's non-root user (uid 10001) can write into.

    kfp.local creates the run's and tasks' folders on the host; with umask 0 they are writable
    by the container's user too (restored afterwards).
    """
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o777)
    previous = os.umask(0)
    try:
        yield root
    finally:
        os.umask(previous)
