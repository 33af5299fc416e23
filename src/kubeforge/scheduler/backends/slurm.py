"""The `slurm` backend: sbatch, squeue and scancel against a real SLURM controller.

The launch key, tagged with the state folder, is the SLURM job name and the job id is
kept in `<root>/<key>.id`; a launch repeated after a crash finds the job by id file or by
name (squeue) before it submits. The batch script records the exit code itself, because SLURM forgets finished
jobs after MinJobAge when no accounting database runs.

The job's environment is explicit: `--export` names only the allowlisted variables of the
scheduler's environment (`PASSTHROUGH_ENV`, never ALL), and the job's own variables are
exported by the batch script, which reaches sbatch on stdin (not argv); steps (`srun`)
inherit that environment and nothing else.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from kubeforge.errors import SlurmBackendError
from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import (
    LOST_EXIT_CODE,
    PASSTHROUGH_ENV,
    PolledLaunch,
    job_command,
    job_environment,
    passthrough_environment,
)
from kubeforge.scheduler.backends.supervisor import LAUNCH_KEY
from kubeforge.scheduler.logs import EMPTY, LogSlice, read_file_range
from kubeforge.scheduler.model import Job

_ENDED = {"GONE", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL"}
"""squeue states of jobs that ended without the batch script recording an exit code ("GONE": not listed)."""


class SlurmBackend(PolledLaunch):
    """Submits each job as one sbatch job of `workers` tasks."""

    name: ClassVar[str] = "slurm"

    def __init__(
        self,
        root: str | Path,
        capacity: Resources,
        partition: str = "",
        passthrough: tuple[str, ...] = PASSTHROUGH_ENV,
    ) -> None:
        self.root = Path(root)
        self._tag = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]
        """Part of every SLURM job name: schedulers sharing a cluster never take each other's jobs for theirs."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)
        self.capacity = capacity
        self.partition = partition
        self.passthrough = passthrough

    def submit(self, job: Job) -> JobHandle:
        """sbatch the job unless a job with its launch key exists; the handle's id is `SLURM_ID:LAUNCH_KEY`."""
        key = job.launch_key
        id_file = self.root / f"{key}.id"
        if id_file.is_file():
            return JobHandle(self.name, key, f"{id_file.read_text().strip()}:{key}")
        found = _run(["squeue", "-h", "--states=all", f"--name={key}.{self._tag}", "-o", "%i"]).split()
        if found:
            id_file.write_text(found[0])
            return JobHandle(self.name, key, f"{found[0]}:{key}")
        command = shlex.join(job_command(job, nproc_per_node=1 if job.spec.training is None else None))
        if job.spec.workers > 1 and job.spec.training is None:
            command = f"srun {command}"
        exit_file = shlex.quote(str(self.root / f"{key}.exit"))
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in job_environment(job).items())
        script = (
            f"#!/bin/sh\n{exports}export SLURM_EXPORT_ENV=ALL\n"  # steps get the job's environment, no more
            f"{command}\ncode=$?\necho $code > {exit_file}.tmp && mv {exit_file}.tmp {exit_file}\nexit $code\n"
        )
        exported = sorted(passthrough_environment(self.passthrough))
        resources = job.spec.resources
        args = [
            "sbatch",
            "--parsable",
            f"--job-name={key}.{self._tag}",
            f"--output={self.root / key}.out",
            f"--ntasks={job.spec.workers if job.spec.training is None else 1}",
            f"--cpus-per-task={max(1, -(-resources.cpu_m // 1000))}",
            f"--mem={max(1, resources.memory_mb * (1 if job.spec.training is None else job.spec.workers))}M",
            f"--time={max(1, -(-int(job.spec.max_runtime_s) // 60))}",
            f"--export={','.join(exported) or 'NONE'}",
        ]
        if resources.gpu:
            args.insert(2, f"--gpus-per-task={resources.gpu}")
        if self.partition:
            args.insert(2, f"--partition={self.partition}")
        slurm_id = _run(args, script=script).strip().split(";")[0]
        id_file.write_text(slurm_id)
        return JobHandle(self.name, key, f"{slurm_id}:{key}")

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        """Exit codes of ended jobs: from the exit file, or lost when SLURM ended a job without one."""
        if not handles:
            return {}
        slurm_ids = ",".join(handle.split(":", 1)[0] for handle in handles.values())
        try:
            listed = _run(["squeue", "-h", "--states=all", "-j", slurm_ids, "-o", "%i %T"])
            states: dict[str, str] | None = dict(line.split() for line in listed.splitlines() if line.strip())
        except SlurmBackendError:
            states = None  # the controller may have forgotten some ids; trust only exit files this time
        ended: dict[int, int] = {}
        for job_id, handle in handles.items():
            slurm_id, key = handle.split(":", 1)
            exit_file = self.root / f"{key}.exit"
            if exit_file.is_file():
                ended[job_id] = int(exit_file.read_text())
            elif states is not None and states.get(slurm_id, "GONE") in _ENDED:
                ended[job_id] = LOST_EXIT_CODE
        return ended

    def suspend(self, handle: JobHandle) -> None:
        """SIGTERM to every step and the batch shell; SLURM itself ends the job at its time limit."""
        _run(["scancel", "--signal=TERM", "--full", handle.id.split(":", 1)[0]], check=False)

    def cancel(self, handle: JobHandle) -> None:
        """scancel the job."""
        _run(["scancel", handle.id.split(":", 1)[0]], check=False)

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        """A byte range of the job's output file (offset None: its tail)."""
        out = self.root / f"{handle.split(':', 1)[-1]}.out"
        return read_file_range(out, offset, limit) if LAUNCH_KEY.fullmatch(out.stem) else EMPTY

    def reason(self, handle: str) -> str:
        """SLURM tells nothing beyond the exit code here."""
        return ""


def _run(args: list[str], check: bool = True, script: str | None = None) -> str:
    try:
        result = subprocess.run(args, input=script, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SlurmBackendError(f"{args[0]} is not installed; install slurm-wlm (make system-deps)") from None
    except subprocess.TimeoutExpired:
        raise SlurmBackendError(f"{args[0]} did not answer within 60 s; is slurmctld up?") from None
    if check and result.returncode != 0:
        raise SlurmBackendError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


__all__ = ["SlurmBackend", "SlurmBackendError"]
