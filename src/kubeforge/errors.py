"""The kubeforge exception hierarchy; each class carries the CLI exit code it maps to."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import TracebackType

ERROR_REPORT_DIR_ENV = "KUBEFORGE_ERROR_REPORT_DIR"
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


def install_error_report_hook() -> None:
    """Report an uncaught KubeforgeError to $KUBEFORGE_ERROR_REPORT_DIR, then run the usual hook."""
    report_dir = os.environ.get(ERROR_REPORT_DIR_ENV)
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
    "ArtifactError",
    "InfraError",
    "InputError",
    "KubeforgeError",
    "RunFailedError",
    "ServingError",
    "SubmitError",
    "TrainingError",
]
