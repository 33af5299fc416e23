"""kubeforge's configuration file, `$KUBEFORGE_HOME/config.json`: where `kubeforge submit` finds the cluster.

`kubeforge infra up` records the kubeconfig, the KFP endpoint, the artifact root and the image
registry of the cluster it stood up; other keys in the file are kept. Writes are atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubeforge.artifacts import write_text
from kubeforge.errors import InputError
from kubeforge.home import state_dir_path

CONFIG_FILE = "config.json"
"""The configuration file's name inside the state directory."""

CLUSTER_KEYS = ("target", "kubeconfig", "kfp_endpoint", "artifact_root", "image_registry")
"""The keys `kubeforge infra up` records (and `down` removes)."""


def config_path(state_dir: str | Path | None = None) -> Path:
    """The configuration file: `state_dir` (else $KUBEFORGE_HOME, else ~/.kubeforge) / config.json."""
    return state_dir_path(state_dir) / CONFIG_FILE


def load_config(state_dir: str | Path | None = None) -> dict[str, Any]:
    """The configuration as a dict; empty when the file does not exist yet."""
    path = config_path(state_dir)
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); fix or delete the file") from exc
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object at the top level; fix or delete the file")
    return config


def save_config(updates: dict[str, Any], state_dir: str | Path | None = None) -> Path:
    """Merge `updates` into the configuration (a None value removes the key); write it atomically."""
    path = config_path(state_dir)
    config = load_config(state_dir)
    for key, value in updates.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    write_text(str(path), json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def save_kubeconfig(target: str, content: str, state_dir: str | Path | None = None) -> Path:
    """Write a kubeconfig for `target` to the state directory (mode 0600 from the start, atomically)."""
    path = state_dir_path(state_dir) / f"kubeconfig-{target}"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


__all__ = ["CLUSTER_KEYS", "CONFIG_FILE", "config_path", "load_config", "save_config", "save_kubeconfig"]
