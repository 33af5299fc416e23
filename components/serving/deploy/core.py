"""Deploy a Model artifact to a serving target; the component wraps this function.

Only the `local` target (a detached kubeforge model server on this machine) exists in this
version; `kserve`, `vertex` and `sagemaker` are recognised and refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeforge.errors import InputError
from kubeforge.serving.local import start_local_server
from kubeforge.serving.protocol import check_model_name

TARGETS = ("local", "kserve", "vertex", "sagemaker")
AVAILABLE_TARGETS = ("local",)


@dataclass(frozen=True)
class DeployResult:
    """Where a deployed model answers (`endpoint` is the server's base URL) and the deployment's state."""

    endpoint: str
    target: str
    status: str
    model_name: str
    infer_url: str = ""


def deploy(
    model_dir: str,
    target: str,
    model_name: str,
    port: int = 0,
    state_dir: str | None = None,
) -> DeployResult:
    """Serve `model_dir` on `target` under `model_name` and wait until it answers.

    Status is `started` for a new server and `reattached` when the same model was already served
    under that name.
    """
    _check_target(target)
    check_model_name(model_name)
    if not model_dir:
        raise InputError("model_dir: empty; give the directory of a trained kubeforge model")
    endpoint = start_local_server(model_dir, model_name, port=port, state_dir=state_dir)
    return DeployResult(
        endpoint=endpoint.url,
        target=target,
        status="reattached" if endpoint.reattached else "started",
        model_name=model_name,
        infer_url=endpoint.infer_url,
    )


def _check_target(target: str) -> None:
    if target in AVAILABLE_TARGETS:
        return
    available = ", ".join(AVAILABLE_TARGETS)
    if target in TARGETS:
        raise InputError(
            f"target: {target!r} is not available in this version of kubeforge yet; available targets: {available}"
        )
    raise InputError(f"target: {target!r} is not a deploy target; valid targets are {', '.join(TARGETS)}")


__all__ = ["AVAILABLE_TARGETS", "TARGETS", "DeployResult", "deploy"]
