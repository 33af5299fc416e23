"""The one interface every deploy target implements: a `DeployRequest` in, a `DeployResult` out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kubeforge.deploy.options import RemoteOptions


@dataclass(frozen=True)
class DeployRequest:
    """What to serve and how: the model (a local folder or an artifact URI), its name, and the target's settings.

    `port` and `state_dir` matter to the local target only; `remote` to the remote ones.
    """

    model_dir: str
    model_name: str
    port: int = 0
    state_dir: str | None = None
    remote: RemoteOptions = field(default_factory=RemoteOptions)

    @property
    def storage_uri(self) -> str:
        """Where a remote target reads the model: `remote.storage_uri`, else the model's own URI."""
        return self.remote.storage_uri or self.model_dir


@dataclass(frozen=True)
class DeployResult:
    """Where a deployed model answers (`endpoint` is the server's base URL) and the deployment's state."""

    endpoint: str
    target: str
    status: str
    model_name: str
    infer_url: str = ""


class DeployTarget(Protocol):
    """A deploy target: serves `request`'s model, waits until it answers, and says where.

    Re-runnable: the same model again re-attaches (`reattached`), a new model updates in place
    (`updated`), nothing is duplicated.
    """

    def __call__(self, request: DeployRequest) -> DeployResult:
        """Deploy `request` and return where it answers."""


__all__ = ["DeployRequest", "DeployResult", "DeployTarget"]
