"""`kubeforge infra`'s steps: pick the root configuration, prepare terraform, record the cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubeforge
from kubeforge import settings
from kubeforge.errors import InputError
from kubeforge.infra.binary import check_terraform, find_terraform
from kubeforge.infra.config import CLUSTER_KEYS, load_config, save_config, save_kubeconfig
from kubeforge.infra.runner import TerraformRunner

TARGETS = ("local", "aws", "gcp")
"""Deployment targets: each is a root configuration in terraform/envs/<target>."""

PROVIDER_MIRROR_ENV = settings.PROVIDER_MIRROR.name
"""Environment variable naming a Terraform provider filesystem mirror (the folder holding registry.terraform.io)."""

RECORDED_OUTPUTS = ("kubeconfig", "kfp_endpoint", "artifact_root", "image_registry")
"""Root outputs that `up` records in kubeforge's configuration."""


@dataclass(frozen=True)
class InfraOptions:
    """What `kubeforge infra` was asked to run against."""

    target: str
    root: Path | None = None
    terraform: Path | None = None
    var_files: Sequence[Path] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    provider_mirror: Path | None = None
    aws_endpoint: str | None = None


def project_root() -> Path | None:
    """The kubeforge checkout: the nearest folder above the working directory (or the package) with terraform/envs."""
    for start in (Path.cwd(), Path(kubeforge.__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "terraform" / "envs").is_dir():
                return folder
    return None


def root_for(options: InfraOptions) -> Path:
    """The root configuration to run: --dir if given, else terraform/envs/<target> of the checkout."""
    if options.target not in TARGETS:
        raise InputError(f"--target: {options.target!r} is not a target; use one of {', '.join(TARGETS)}")
    if options.root is not None:
        return options.root.resolve()
    checkout = project_root()
    if checkout is None:
        raise InputError("--dir: no terraform/envs folder above the working directory; run in a checkout or pass --dir")
    return checkout / "terraform" / "envs" / options.target


def provider_mirror_config(mirror: Path, folder: Path) -> Path:
    """Write a Terraform CLI config that installs providers from the filesystem `mirror`; return its path."""
    if not (mirror / "registry.terraform.io").is_dir():
        raise InputError(
            f"--provider-mirror {mirror}: no registry.terraform.io folder inside; "
            "pass the folder that holds registry.terraform.io/<namespace>/<provider>/"
        )
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "kubeforge-providers.tfrc"
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror.resolve()}"\n  }}\n}}\n')
    return config


def prepare(options: InfraOptions) -> TerraformRunner:
    """Check terraform, then `terraform init` the root configuration; return the runner."""
    root = root_for(options)
    binary = find_terraform(options.terraform, project_root())
    check_terraform(binary)
    variables = dict(options.variables)
    if options.aws_endpoint:
        variables["aws_endpoint"] = options.aws_endpoint
    environment: dict[str, str] = {}
    mirror_from_environment = settings.PROVIDER_MIRROR.read()
    mirror = options.provider_mirror or (Path(mirror_from_environment) if mirror_from_environment else None)
    if mirror is not None:
        environment["TF_CLI_CONFIG_FILE"] = str(provider_mirror_config(mirror, root / ".terraform"))
    runner = TerraformRunner(root, binary, options.var_files, variables, environment)
    runner.init()
    return runner


def record_cluster(target: str, outputs: Mapping[str, Any], state_dir: str | Path | None = None) -> list[str]:
    """Record the cluster's outputs in kubeforge's configuration; return the outputs the root lacks."""
    updates: dict[str, Any] = {key: None for key in CLUSTER_KEYS}
    updates["target"] = target
    for name in RECORDED_OUTPUTS:
        value = outputs.get(name)
        if value in (None, ""):
            continue
        if name == "kubeconfig" and "\n" in str(value):  # the kubeconfig's content, not a path to one
            value = str(save_kubeconfig(target, str(value), state_dir))
        updates[name] = value
    save_config(updates, state_dir)
    return [name for name in RECORDED_OUTPUTS if updates[name] is None]


def forget_cluster(target: str, state_dir: str | Path | None = None) -> bool:
    """After `down`: remove the recorded cluster if it is `target`'s; return whether it was."""
    if load_config(state_dir).get("target") != target:
        return False
    save_config({key: None for key in CLUSTER_KEYS}, state_dir)
    return True


def parse_variables(pairs: Sequence[str]) -> dict[str, str]:
    """Parse repeated `--var KEY=VALUE` options."""
    variables: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--var {pair!r}: expected KEY=VALUE")
        variables[key] = value
    return variables


__all__ = [
    "PROVIDER_MIRROR_ENV",
    "RECORDED_OUTPUTS",
    "TARGETS",
    "InfraOptions",
    "forget_cluster",
    "parse_variables",
    "prepare",
    "project_root",
    "provider_mirror_config",
    "record_cluster",
    "root_for",
]
