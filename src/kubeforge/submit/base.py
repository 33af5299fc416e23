"""What every submission shares: a pipeline checked and compiled locally, and following a run.

Everything that can be checked on this machine is checked before a server is contacted (the
pipeline imports and compiles, every `--param` is declared, every required one is given), so
a bad submission creates nothing remotely. The targets live in `kfp` and `vertex`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.catalog.pipelines import load_pipeline, missing_params, parse_params
from kubeforge.errors import InputError, RunFailedError, SubmitError

Echo = Callable[[str], None]


@dataclass(frozen=True)
class PreparedPipeline:
    """A pipeline ready to send: its name, compiled YAML package and typed parameters."""

    reference: str
    name: str
    package: Path
    params: dict[str, Any]


@dataclass(frozen=True)
class RunStatus:
    """One look at a remote run: its state, each task's state, and whether it has ended."""

    state: str
    tasks: dict[str, str] = field(default_factory=dict)
    finished: bool = False
    succeeded: bool = False
    error: str = ""


@dataclass(frozen=True)
class Submission:
    """What was created remotely: a run or a schedule, its id and where to look at it."""

    target: str
    kind: str
    resource_id: str
    url: str
    final: RunStatus | None = None


@contextmanager
def prepared_pipeline(reference: str, pairs: tuple[str, ...] | list[str]) -> Iterator[PreparedPipeline]:
    """Load, check and compile `reference` into a temporary package that lives for the block."""
    function = load_pipeline(reference)
    params = parse_params(pairs, function)
    missing = missing_params(params, function)
    if missing:
        raise InputError(
            f"{reference}: required parameter(s) {', '.join(missing)} not given; pass --param NAME=VALUE for each"
        )
    with tempfile.TemporaryDirectory(prefix="kubeforge-submit-") as scratch:
        package = Path(scratch) / "pipeline.yaml"
        try:
            compile_pipeline(function, package)
        except Exception as exc:  # kfp raises many types; each means "this pipeline does not compile"
            raise InputError(f"{reference}: the pipeline does not compile: {type(exc).__name__}: {exc}") from exc
        name = str(getattr(function, "name", reference))
        yield PreparedPipeline(reference=reference, name=name, package=package, params=params)


def follow_run(
    poll: Callable[[], RunStatus], echo: Echo, interval_s: float = 5.0, timeout_s: float = 24 * 3600.0
) -> RunStatus:
    """Poll a run until it ends, echoing a line whenever its state or a task's state changes.

    Returns the final status when it succeeded; raises RunFailedError naming the failed tasks
    otherwise, and SubmitError when `timeout_s` passes first (the run itself keeps going).
    """
    started = time.monotonic()
    last: RunStatus | None = None
    while True:
        status = poll()
        if last is None or (status.state, status.tasks) != (last.state, last.tasks):
            echo(_progress_line(time.monotonic() - started, status))
        last = status
        if status.finished:
            break
        if time.monotonic() - started > timeout_s:
            raise SubmitError(f"the run is still {status.state} after {timeout_s:.0f} s; it keeps running remotely")
        time.sleep(interval_s)
    if not status.succeeded:
        failed = [task for task, state in status.tasks.items() if state in _FAILED_TASK_STATES]
        detail = f"; failed task(s): {', '.join(failed)}" if failed else ""
        reason = f": {status.error}" if status.error else ""
        raise RunFailedError(f"the run ended {status.state}{reason}{detail}")
    return status


_FAILED_TASK_STATES = ("FAILED", "PIPELINE_STATE_FAILED", "CANCELED", "CANCELLED")


def _progress_line(elapsed: float, status: RunStatus) -> str:
    tasks = "  ".join(f"{task}={state}" for task, state in sorted(status.tasks.items()))
    return f"[{elapsed:7.1f} s] {status.state}" + (f"  {tasks}" if tasks else "")


def parse_labels(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Turn `key=value` label strings into a mapping, checking Google Cloud's label rules."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--label {pair!r}: expected KEY=VALUE")
        for text in (key, value):
            if len(text) > 63 or text != text.lower() or not all(c.isalnum() or c in "-_" for c in text):
                raise InputError(
                    f"--label {pair!r}: keys and values are at most 63 lowercase letters, digits, '-' or '_'"
                )
        labels[key] = value
    return labels


__all__ = [
    "Echo",
    "PreparedPipeline",
    "RunStatus",
    "Submission",
    "follow_run",
    "parse_labels",
    "prepared_pipeline",
]
