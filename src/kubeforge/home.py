"""kubeforge's state directory on this machine (local server registry, infra records)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir_path(state_dir: str | Path | None = None) -> Path:
    """The state directory: the argument, else `$KUBEFORGE_HOME`, else `~/.kubeforge`."""
    if state_dir is not None:
        return Path(state_dir)
    return Path(os.environ.get("KUBEFORGE_HOME") or Path.home() / ".kubeforge")


__all__ = ["state_dir_path"]
