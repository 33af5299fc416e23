"""Running a whole pipeline on this machine.

By default through kubeforge's local runner (kubeforge.local): kfp.local's orchestration with
tasks forked from a warm worker that already imported kfp, torch, pandas and kubeforge (the
same Python environment the kubeforge image holds), content-keyed caching, resume and
parallel tasks. Passing a kfp.local runner (`SubprocessRunner()`, `DockerRunner()`) runs plain
kfp.local instead. A task that fails with a kubeforge error has its message reported back
here, so the caller sees the cause, not only a status.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeforge import errors
from kubeforge.errors import ERROR_REPORT_DIR_ENV, KubeforgeError, PipelineRunError, read_error_reports
from kubeforge.local.runner import RunOptions, execute

# kfp.local warns when a task's base image name lacks "python"; the kubeforge image is a
# Python image, so that warning does not apply to our components.
_CUSTOM_IMAGE_WARNING = r"You may be attemping to run a task that uses custom or non-Python base image"
# kfp.local warns that resource settings have no local effect; kubeforge's runner honours them.
_NO_LOCAL_EFFECT_WARNING = r"Task .*: settings .* have no effect in the current local runner"


@dataclass(frozen=True)
class LocalRun:
    """Where a finished local run left its outputs."""

    pipeline: str
    run_dir: Path
    seconds: float
    tasks: dict[str, dict[str, str]] = field(default_factory=dict)

    def task_dir(self, task: str) -> Path:
        """The output folder of one task (named as in the compiled pipeline): where it wrote them,
        or, for a task served from the cache, where the run that computed them did."""
        recorded = self.tasks.get(task)
        return Path(recorded["folder"]) if recorded else self.run_dir / task

    def count(self, how: str) -> int:
        """How many tasks finished `how`: ran, cached or resumed (kubeforge's runner only)."""
        return sum(1 for task in self.tasks.values() if task["how"] == how)


def run_pipeline_locally(
    pipeline: Callable[..., Any],
    params: dict[str, Any],
    pipeline_root: str | Path,
    runner: Any = None,
    options: RunOptions | None = None,
) -> LocalRun:
    """Execute every task of `pipeline`; raises PipelineRunError (or the task's own error) on failure.

    Without `runner`, kubeforge's local runner runs it with `options` (caching on by default).
    `runner` is a kfp.local runner, which runs plain kfp.local instead: `SubprocessRunner(use_venv=
    False)` starts each task as a subprocess of this Python, `DockerRunner()` in its image.
    """
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _error_reports() as report_dir, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CUSTOM_IMAGE_WARNING, category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=_NO_LOCAL_EFFECT_WARNING, category=UserWarning)
        try:
            if runner is None:
                return _with_kubeforge_runner(pipeline, params, root, options or RunOptions(), started)
            return _with_kfp_local(pipeline, params, root, runner, started)
        except RuntimeError as exc:
            raise _explain(exc, report_dir) from None


def _with_kubeforge_runner(
    pipeline: Callable[..., Any], params: dict[str, Any], root: Path, options: RunOptions, started: float
) -> LocalRun:
    record = execute(pipeline, params, root, options)
    return LocalRun(record.pipeline, root / record.name, time.perf_counter() - started, dict(record.tasks))


def _with_kfp_local(
    pipeline: Callable[..., Any], params: dict[str, Any], root: Path, runner: Any, started: float
) -> LocalRun:
    from kfp import local

    before = set(root.iterdir())
    local.init(runner=runner, pipeline_root=str(root), raise_on_error=True)
    pipeline(**params)
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
