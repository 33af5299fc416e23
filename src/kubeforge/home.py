"""kubeforge's state directory on this machine (local server registry, infra records)."""

from __future__ import annotations

from pathlib import Path

from kubeforge import settings


def state_dir_path(state_dir: str | Path | None = None) -> Path:
    """The state directory: the argument, else `$KUBEFORGE_HOME`, else `~/.kubeforge`."""
    if state_dir is not None:
        return Path(state_dir)
    return Path(settings.HOME.read() or Path.home() / ".kubeforge")


__all__ = ["state_dir_path"]
