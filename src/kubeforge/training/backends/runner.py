"""Submit-or-attach, then follow a job to its end: the launcher logic shared by every backend.

The handle is written before waiting, so a launcher that is killed and run again (a
preempted pipeline pod, say) re-attaches to the job it created instead of creating another.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from kubeforge.artifacts import write_text
from kubeforge.errors import TrainingError
from kubeforge.training.backends.base import JobHandle, JobState, JobStatus, LaunchBackend, TrainingJob


def submit_or_attach(backend: LaunchBackend, job: TrainingJob, handle_path: Path | None) -> JobHandle:
    """Re-attach to the job recorded at `handle_path`, or submit and record the new handle first."""
    if handle_path is not None and handle_path.is_file():
        recorded = JobHandle.from_json(handle_path.read_text())
        if recorded.backend == backend.name and recorded.name == job.name:
            return recorded
    handle = backend.submit(job)
    if handle_path is not None:
        write_text(str(handle_path), handle.to_json())
    return handle


def follow(
    backend: LaunchBackend,
    handle: JobHandle,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    out: TextIO | None = None,
) -> JobStatus:
    """Stream the job's logs until it ends; raise TrainingError with the job's own reason if it fails."""
    out = out or sys.stdout
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    shown = 0
    while True:
        status = backend.status(handle)
        lines = list(backend.logs(handle))
        for line in lines[shown:]:
            out.write(line if line.endswith("\n") else line + "\n")
        out.flush()
        shown = max(shown, len(lines))
        if status.state.terminal:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TrainingError(
                f"{backend.name} job {handle.name} still {status.state.value} after {timeout_s:.0f} s; "
                "it keeps running: re-run to re-attach, or cancel it"
            )
        time.sleep(poll_s)
    if status.state is not JobState.SUCCEEDED:
        raise TrainingError(f"{backend.name} job {handle.name} {status.state.value}: {status.message}")
    return status


def run_job(
    backend: LaunchBackend,
    job: TrainingJob,
    handle_path: Path | None = None,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
) -> JobStatus:
    """Submit (or re-attach) and follow the job to its end."""
    return follow(backend, submit_or_attach(backend, job, handle_path), poll_s=poll_s, timeout_s=timeout_s)


__all__ = ["follow", "run_job", "submit_or_attach"]
