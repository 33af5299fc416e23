"""Running a whole pipeline on this machine with kfp.local's SubprocessRunner.

Each task runs as a subprocess of the current Python environment (which holds kubeforge,
exactly like the kubeforge image does in the cluster). A task that fails with a kubeforge
error has its message reported back here, so the caller sees the cause, not only a status.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeforge import errors
from kubeforge.errors import ERROR_REPORT_DIR_ENV, KubeforgeError, PipelineRunError, read_error_reports

# kfp.local warns when a task's base image name lacks "python"; the kubeforge image is a
# Python image, so that warning does not apply to our components.
_CUSTOM_IMAGE_WARNING = r"You may be attemping to run a task that uses custom or non-Python base image"


@dataclass(frozen=True)
class LocalRun:
    """Where a finished local run left its outputs."""

    pipeline: str
    run_dir: Path
    seconds: float

    def task_dir(self, task: str) -> Path:
        """The output folder of one task (named as in the compiled pipeline)."""
        return self.run_dir / task


def run_pipeline_locally(
    pipeline: Callable[..., Any], params: dict[str, Any], pipeline_root: str | Path, runner: Any = None
) -> LocalRun:
    """Execute every task of `pipeline` in order; raises PipelineRunError naming the failure.

    `runner` is a kfp.local runner; the default runs each task as a subprocess of this Python
    (a `kfp.local.DockerRunner()` runs each task in its component's image instead).
    """
    from kfp import local

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    started = time.perf_counter()
    with _error_reports() as report_dir, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CUSTOM_IMAGE_WARNING, category=RuntimeWarning)
        runner = runner or local.SubprocessRunner(use_venv=False)
        local.init(runner=runner, pipeline_root=str(root), raise_on_error=True)
        try:
            pipeline(**params)
        except RuntimeError as exc:
            raise _explain(exc, report_dir) from None
    created = sorted(set(root.iterdir()) - before, key=lambda path: path.stat().st_mtime)
    if not created:
        raise PipelineRunError(f"the pipeline ran but wrote nothing under {root}")
    name = getattr(pipeline, "name", getattr(pipeline, "__name__", "pipeline"))
    return LocalRun(pipeline=name, run_dir=created[-1], seconds=time.perf_counter() - started)


@contextmanager
def _error_reports() -> Iterator[Path]:
    previous = os.environ.get(ERROR_REPORT_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="kubeforge-errors-") as report_dir:
        os.environ[ERROR_REPORT_DIR_ENV] = report_dir
        try:
            yield Path(report_dir)
        finally:
            if previous is None:
                os.environ.pop(ERROR_REPORT_DIR_ENV, None)
            else:
                os.environ[ERROR_REPORT_DIR_ENV] = previous


def _explain(exc: RuntimeError, report_dir: Path) -> KubeforgeError:
    reports = read_error_reports(report_dir)
    status = _strip_ansi(str(exc))
    if not reports:
        return PipelineRunError(f"{status} (see the task's log above)")
    report = reports[-1]
    error_class = getattr(errors, str(report["type"]), PipelineRunError)
    if not (isinstance(error_class, type) and issubclass(error_class, KubeforgeError)):
        error_class = PipelineRunError
    return error_class(f"{report['message']}\n({status})")


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


__all__ = ["LocalRun", "PipelineRunError", "run_pipeline_locally"]
