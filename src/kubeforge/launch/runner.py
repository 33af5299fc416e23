"""Submit-or-attach, then follow a job to its end: the launcher logic shared by every backend.

The handle is written to durable storage (a local path or an s3:// / gs:// URI beside the
task's outputs) before waiting, so a launcher that is killed and run again (an evicted pipeline
pod, a retried task) re-attaches to the job it created while that job is queued or running, and
submits again (the job resumes from its checkpoint) only once the recorded job is gone. A job
that ends preempted is requeued the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from kubeforge.artifacts import exists, read_text, write_text
from kubeforge.errors import TrainingError
from kubeforge.launch.base import MAX_REQUEUES, JobHandle, JobState, JobStatus, LaunchBackend, TrainingJob


def recorded_handle(backend: LaunchBackend[TrainingJob], job: TrainingJob, handle_path: str | None) -> JobHandle | None:
    """The handle recorded at `handle_path` for this backend and job name, if any."""
    if not handle_path or not exists(handle_path):
        return None
    recorded = JobHandle.from_json(read_text(handle_path))
    return recorded if recorded.backend == backend.name and recorded.name == job.name else None


def submit_or_attach(
    backend: LaunchBackend[TrainingJob],
    job: TrainingJob,
    handle_path: str | Path | None,
    also_record_to: Sequence[str] = (),
) -> JobHandle:
    """Re-attach to the job recorded at `handle_path` while it is live or has succeeded; else submit,
    and record the new handle there (and at `also_record_to`) before anything waits on it."""
    recorded = recorded_handle(backend, job, str(handle_path) if handle_path else None)
    if recorded is not None:
        state = backend.status(recorded).state
        if state.live or state is JobState.SUCCEEDED:
            return recorded
    handle = backend.submit(job)
    for path in (handle_path, *also_record_to):
        if path:
            write_text(str(path), handle.to_json())
    return handle


def follow(
    backend: LaunchBackend[TrainingJob],
    handle: JobHandle,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    out: TextIO | None = None,
) -> JobStatus:
    """Stream the job's logs until this launch ends: succeeded or preempted; TrainingError with the
    job's own reason if it failed or was cancelled."""
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
    if status.state not in (JobState.SUCCEEDED, JobState.PREEMPTED):
        raise TrainingError(f"{backend.name} job {handle.name} {status.state.value}: {status.message}")
    return status


def run_job(
    backend: LaunchBackend[TrainingJob],
    job: TrainingJob,
    handle_path: str | Path | None = None,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    also_record_to: Sequence[str] = (),
) -> JobStatus:
    """Submit (or re-attach) and follow the job to its end, requeueing it when it is preempted."""
    for _ in range(MAX_REQUEUES + 1):
        handle = submit_or_attach(backend, job, handle_path, also_record_to)
        status = follow(backend, handle, poll_s=poll_s, timeout_s=timeout_s)
        if status.state is JobState.SUCCEEDED:
            return status
    raise TrainingError(
        f"{backend.name} job {job.name} was preempted {MAX_REQUEUES + 1} times; re-run to resume from its checkpoint"
    )


__all__ = ["follow", "recorded_handle", "run_job", "submit_or_attach"]
