"""The `local` backend: torchrun on this machine, as a detached process group.

torchrun's elastic agent restarts the whole worker group (up to `max_restarts` times) when a
worker dies; the engine then resumes from the last checkpoint. The job's exit code is written
next to its log, so status survives the launcher; PREEMPTED_EXIT_CODE (SIGTERM, checkpointed)
reads as preempted, and the launcher requeues it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob, state_of_exit_code
from kubeforge.launch.torchrun import STANDALONE, torchrun_command

LOG_FILE = "job.log"
EXIT_CODE_FILE = "exit_code"
CONFIG_FILE = "train_config.json"
CANCELLED_FILE = "cancelled"


class LocalBackend:
    """torchrun with `nproc_per_node` processes on this machine (nodes must be 1)."""

    name: ClassVar[str] = "local"

    def submit(self, job: TrainingJob) -> JobHandle:
        """Start torchrun detached; a job of this name still running in the run dir is re-attached."""
        run_dir = Path(job.config.run_dir)
        existing = _recorded(run_dir, job.name)
        if existing is not None and self.status(existing).state is JobState.RUNNING:
            return existing
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (EXIT_CODE_FILE, CANCELLED_FILE):
            (run_dir / stale).unlink(missing_ok=True)
        config_path = run_dir / CONFIG_FILE
        config_path.write_text(job.config.to_json())
        torchrun = torchrun_command(
            [str(config_path)], job.nproc_per_node, job.max_restarts, rendezvous=STANDALONE, python=sys.executable
        )
        threads = max(1, (os.cpu_count() or 1) // job.nproc_per_node)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads), **job.env}
        exit_file = run_dir / EXIT_CODE_FILE
        # The job runs in the background of a short-lived shell that starts a new session: it is
        # nobody's child once the shell exits, so it outlives the launcher and leaves no zombie.
        script = (
            f'( "$@"; echo $? > "{exit_file}.tmp" && mv "{exit_file}.tmp" "{exit_file}" ) '
            f'>> "{run_dir / LOG_FILE}" 2>&1 < /dev/null & echo $!'
        )
        with subprocess.Popen(
            ["sh", "-c", script, "sh", *torchrun],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            text=True,
        ) as shell:
            job_pid = int(shell.communicate()[0].strip())
            group = shell.pid
        handle = JobHandle(self.name, job.name, str(job_pid), {"run_dir": str(run_dir), "process_group": group})
        (run_dir / "local_job.json").write_text(handle.to_json())
        return handle

    def status(self, handle: JobHandle) -> JobStatus:
        """Finished (by exit code), running, or vanished."""
        run_dir = Path(handle.details["run_dir"])
        exit_file = run_dir / EXIT_CODE_FILE
        if exit_file.is_file():
            code = int(exit_file.read_text().strip() or "1")
            state = state_of_exit_code(code)
            if state is JobState.SUCCEEDED:
                return JobStatus(state)
            if (run_dir / CANCELLED_FILE).is_file():
                return JobStatus(JobState.CANCELLED)
            if state is JobState.PREEMPTED:
                return JobStatus(state, "stopped by SIGTERM after checkpointing")
            return JobStatus(state, f"torchrun exited with code {code}; last output:\n{_tail(run_dir)}")
        if _alive(int(handle.id)):
            return JobStatus(JobState.RUNNING)
        if exit_file.is_file():  # written just after the first look, as the job's shell ended
            return self.status(handle)
        if (run_dir / CANCELLED_FILE).is_file():
            return JobStatus(JobState.CANCELLED)
        return JobStatus(JobState.FAILED, f"the job's process {handle.id} is gone without an exit code")

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """The job's combined output."""
        path = Path(handle.details["run_dir"]) / LOG_FILE
        if path.is_file():
            yield from path.read_text(errors="replace").splitlines()

    def cancel(self, handle: JobHandle) -> None:
        """SIGKILL the job's process group and its workers (torchrun starts each in its own session)."""
        run_dir = Path(handle.details["run_dir"])
        (run_dir / CANCELLED_FILE).touch()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(handle.details["process_group"]), signal.SIGKILL)
        for pid in worker_processes(run_dir).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def suspend(self, handle: JobHandle) -> None:
        """SIGTERM to the job's node process, which passes it to torchrun once: the workers finish
        their step and checkpoint, and the job ends preempted."""
        children = Path(f"/proc/{handle.id}/task/{handle.id}/children")
        with contextlib.suppress(OSError, ProcessLookupError):
            for pid in children.read_text().split():
                os.kill(int(pid), signal.SIGTERM)


def worker_processes(run_dir: Path) -> dict[int, int]:
    """Rank -> pid of the running worker processes of the local job in `run_dir`.

    Workers are recognised by the job's configuration path on their command line and their
    RANK in the environment (Linux /proc), e.g. to inspect or signal one worker.
    """
    marker = str(run_dir / CONFIG_FILE).encode()
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kubeforge.training.worker" in cmdline and marker in cmdline:
            ranks = [item.split(b"=", 1)[1] for item in environ if item.startswith(b"RANK=")]
            if ranks:
                found[int(ranks[0])] = int(proc.name)
    return found


def _recorded(run_dir: Path, name: str) -> JobHandle | None:
    path = run_dir / "local_job.json"
    if not path.is_file():
        return None
    handle = JobHandle.from_json(path.read_text())
    return handle if handle.name == name else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _tail(run_dir: Path, lines: int = 30) -> str:
    path = run_dir / LOG_FILE
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


__all__ = ["CONFIG_FILE", "EXIT_CODE_FILE", "LOG_FILE", "LocalBackend", "worker_processes"]
