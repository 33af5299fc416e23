"""Deploy a Model artifact to a serving target; the component wraps this function.

The targets (`local`, `kserve`, `vertex`, `sagemaker`) live in the library, `kubeforge.deploy`,
behind one interface; this core turns the component's values into a request for one of them.
Every target is re-runnable: a second run with the same model re-attaches, a new model updates in
place, nothing is duplicated.
"""

from __future__ import annotations

from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.deploy.options import RemoteOptions
from kubeforge.deploy.targets import deploy as deploy_to


def deploy(
    model_dir: str,
    target: str,
    model_name: str,
    port: int = 0,
    state_dir: str | None = None,
    remote: RemoteOptions | None = None,
) -> DeployResult:
    """Serve `model_dir` on `target` under `model_name` and wait until it answers.

    Remote targets read the model from `remote.storage_uri` (default: `model_dir`, then the
    artifact's s3:// or gs:// URI). Status is `started`/`created` for a new deployment,
    `reattached` when the same model was already served under that name and `updated` when a
    remote deployment moved to a new model.
    """
    request = DeployRequest(model_dir, model_name, port=port, state_dir=state_dir, remote=remote or RemoteOptions())
    return deploy_to(target, request)


__all__ = ["DeployResult", "RemoteOptions", "deploy"]
