"""The deploy targets by name, and `deploy()`, which checks a request and hands it to its target."""

from __future__ import annotations

from kubeforge.deploy.base import DeployRequest, DeployResult, DeployTarget
from kubeforge.deploy.kserve import deploy_to_kserve
from kubeforge.deploy.local import deploy_local
from kubeforge.deploy.options import check_target_options
from kubeforge.deploy.sagemaker import deploy_to_sagemaker
from kubeforge.deploy.vertex import deploy_to_vertex
from kubeforge.errors import InputError
from kubeforge.serving.protocol import check_model_name

TARGETS: dict[str, DeployTarget] = {
    "local": deploy_local,
    "kserve": deploy_to_kserve,
    "vertex": deploy_to_vertex,
    "sagemaker": deploy_to_sagemaker,
}
"""Every deploy target; a new one is a module with a `DeployTarget` function added here (docs/architecture.md)."""


def deploy(target: str, request: DeployRequest) -> DeployResult:
    """Serve `request` on `target` and wait until it answers; bad input is refused before anything is created."""
    if target not in TARGETS:
        raise InputError(f"target: {target!r} is not a deploy target; valid targets are {', '.join(TARGETS)}")
    check_model_name(request.model_name)
    check_target_options(target, request.remote.target_options)
    return TARGETS[target](request)


__all__ = ["TARGETS", "deploy"]
