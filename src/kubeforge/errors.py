"""Every error class kubeforge raises on purpose, each with the exit code the CLI ends with.

| exit | class | meaning |
|---|---|---|
| 1 | KubeforgeError | any other kubeforge error |
| 2 | InputError | bad data or parameters: the message names the field and the fix |
| 3 | ArtifactError | an artifact cannot be read or written |
| 4 | TrainingError | a training run failed |
| 5 | ServingError | the model server could not be started, reached or stopped |
| 6 | SchedulerError | the scheduler API refused a request or could not be reached |
| 7 | InfraError | Terraform or another infrastructure tool failed |
| 8 | SubmitError | a pipeline could not be submitted |
| 9 | RunFailedError | a submitted run followed with --wait failed |
| 10 | SchedulerBackendError | a scheduler backend failed (LocalBackendError, SlurmBackendError, ...) |
| 11 | StoreError | the scheduler's store cannot be reached (a dead PostgreSQL, say) |
| 12 | LeaseHeldError | another dispatcher holds the store's lease |
| 13 | PipelineRunError | a task of a locally run pipeline failed |
| 14 | TrackingError | the MLflow tracking server cannot be reached or refused a request |
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from types import TracebackType

from kubeforge import settings

ERROR_REPORT_DIR_ENV = settings.ERROR_REPORT_DIR.name
"""When set, a kubeforge error that ends a process is also written there as JSON, so the
process that launched it (the local pipeline runner) can report the message itself."""


class KubeforgeError(Exception):
    """Base of every error kubeforge raises on purpose; its message is meant for users."""

    exit_code = 1


class InputError(KubeforgeError):
    """The user's data or parameters are wrong: the message names the field and the fix."""

    exit_code = 2


class ArtifactError(KubeforgeError):
    """An artifact cannot be read or written (missing object, bad URI, storage failure)."""

    exit_code = 3


class TrainingError(KubeforgeError):
    """A training run failed; the message carries the workers' own error."""

    exit_code = 4


class ServingError(KubeforgeError):
    """The model server could not be started, reached or stopped."""

    exit_code = 5


# --- infrastructure (kubeforge infra) ---
class InfraError(KubeforgeError):
    """Terraform or another infrastructure tool is missing, too old, or failed; the message says which step."""

    exit_code = 7


# --- submission (kubeforge submit) ---
class SubmitError(KubeforgeError):
    """A pipeline could not be submitted: endpoint unreachable, credentials refused, request rejected."""

    exit_code = 8


class RunFailedError(SubmitError):
    """A submitted run that was followed with --wait ended in a failed or cancelled state."""

    exit_code = 9


# --- scheduler (kubeforge queue) ---
class SchedulerError(KubeforgeError):
    """The scheduler API refused a request or could not be reached."""

    exit_code = 6


class SchedulerBackendError(SchedulerError):
    """A scheduler backend (the local supervisor, SLURM, Kubernetes) failed; the message carries its own error."""

    exit_code = 10


class LocalBackendError(SchedulerBackendError):
    """The local supervisor could not be started or stopped answering."""


class SlurmBackendError(SchedulerBackendError):
    """A SLURM command failed; the message carries its own error."""


class KubernetesBackendError(SchedulerBackendError):
    """The Kubernetes API refused a request; the message names the object and the HTTP status."""


class StoreError(SchedulerError):
    """The scheduler's state store cannot be reached or used (a PostgreSQL server down, say): not bad input."""

    exit_code = 11


class LeaseHeldError(SchedulerError):
    """Another dispatcher holds the lease on this store."""

    exit_code = 12


_CREDENTIALS = re.compile(r"(?i)(://[^/@:\s]*:)[^/@\s]*@|((?:password|passwd|pwd)=)[^&\s]*")
STORE_UNAVAILABLE = "the job store is unavailable right now; retry in a few seconds"


class LeaseLostError(SchedulerError):
    """Another dispatcher holds the lease now: this one must stop acting at once and stand by."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked: retry later. The message is generic and `detail`
    (for logs) has every credential redacted, so neither ever carries a password."""

    def __init__(self, detail: object = "") -> None:
        super().__init__(STORE_UNAVAILABLE)
        self.detail = redact(str(detail))


def redact(text: str) -> str:
    """`text` with the password of every URL (`scheme://user:PASSWORD@host`, `password=...`) replaced by ***."""
    return _CREDENTIALS.sub(lambda match: f"{match.group(1)}***@" if match.group(1) else f"{match.group(2)}***", text)


# --- local runs (kubeforge run --local) ---
class PipelineRunError(KubeforgeError):
    """A task of a locally run pipeline failed."""

    exit_code = 13


class ForkServerError(PipelineRunError):
    """The local runner's warm worker process could not be started or stopped answering."""


# --- experiment tracking and the model registry (MLflow) ---
class TrackingError(KubeforgeError):
    """The MLflow tracking server cannot be reached or refused a request; the message names the fix."""

    exit_code = 14


def install_error_report_hook() -> None:
    """Report an uncaught KubeforgeError to $KUBEFORGE_ERROR_REPORT_DIR, then run the usual hook.

    Installed by `kubeforge.components`, the package every pipeline task process imports, so that
    the local runner can name a failed task's error; importing `kubeforge` alone, or running the
    `kubeforge` CLI (whose `main` turns kubeforge errors into one line and an exit code itself),
    leaves `sys.excepthook` untouched.
    """
    report_dir = settings.ERROR_REPORT_DIR.read()
    if not report_dir or getattr(sys.excepthook, "_kubeforge", False):
        return
    previous = sys.excepthook

    def _hook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        if isinstance(error, KubeforgeError):
            report = {"type": kind.__name__, "message": str(error), "exit_code": error.exit_code}
            Path(report_dir, f"{os.getpid()}.json").write_text(json.dumps(report))
        previous(kind, error, traceback)

    _hook._kubeforge = True  # type: ignore[attr-defined]
    sys.excepthook = _hook


def read_error_reports(report_dir: Path) -> list[dict[str, object]]:
    """The errors reported by processes that ran with the report hook, oldest first."""
    files = sorted(report_dir.glob("*.json"), key=lambda path: path.stat().st_mtime)
    return [json.loads(path.read_text()) for path in files]


__all__ = [
    "ERROR_REPORT_DIR_ENV",
    "install_error_report_hook",
    "read_error_reports",
    "redact",
    "ArtifactError",
    "ForkServerError",
    "InfraError",
    "InputError",
    "KubeforgeError",
    "KubernetesBackendError",
    "LeaseHeldError",
    "LeaseLostError",
    "LocalBackendError",
    "PipelineRunError",
    "RunFailedError",
    "SchedulerBackendError",
    "SchedulerError",
    "ServingError",
    "SlurmBackendError",
    "STORE_UNAVAILABLE",
    "StoreError",
    "StoreUnavailable",
    "SubmitError",
    "TrainingError",
    "TrackingError",
]
