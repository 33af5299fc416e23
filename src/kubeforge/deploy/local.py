"""The `local` deploy target: a detached kubeforge model server on this machine (see kubeforge.serving.local)."""

from __future__ import annotations

from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.errors import InputError
from kubeforge.serving.local import start_local_server


def deploy_local(request: DeployRequest) -> DeployResult:
    """Start (or re-attach to) the local server for `request.model_dir` and wait until it answers."""
    if not request.model_dir:
        raise InputError("model_dir: empty; give the directory of a trained kubeforge model")
    endpoint = start_local_server(request.model_dir, request.model_name, port=request.port, state_dir=request.state_dir)
    return DeployResult(
        endpoint=endpoint.url,
        target="local",
        status="reattached" if endpoint.reattached else "started",
        model_name=request.model_name,
        infer_url=endpoint.infer_url,
    )


__all__ = ["deploy_local"]
