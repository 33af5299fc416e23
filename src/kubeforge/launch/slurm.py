"""The `slurm` backend: sbatch a script that runs `srun torchrun` across the allocated nodes.

The script records its exit code next to the log, because without slurmdbd a finished job
is forgotten by slurmctld after MinJobAge (300 s by default). A preempted run (SIGTERM from
`scancel --signal=TERM`, SLURM's preemption or `--signal` before the time limit) checkpoints
and exits with PREEMPTED_EXIT_CODE; the script then requeues the same job, which resumes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from kubeforge.errors import TrainingError
from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob, state_of_exit_code
from kubeforge.launch.torchrun import torchrun_command
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE

EXIT_CODE_FILE = "exit_code"
SCRIPT_FILE = "slurm_job.sh"
CONFIG_FILE = "train_config.json"
DEFAULT_GRACE_S = 120
_STATES = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "CANCELLED": JobState.CANCELLED,
}


class SlurmBackend:
    """Submits through the SLURM command-line clients (honouring SLURM_CONF)."""

    name: ClassVar[str] = "slurm"

    def __init__(self, python: str = sys.executable, partition: str | None = None, time_limit: str | None = None):
        self.python = python
        self.partition = partition
        self.time_limit = time_limit

    def submit(self, job: TrainingJob) -> JobHandle:
        """sbatch the job, or re-attach to a pending/running job of the same name."""
        run_dir = Path(job.config.run_dir)
        existing = _run(["squeue", "--noheader", f"--name={job.name}", "--format=%i"]).split()
        if existing:
            return JobHandle(self.name, job.name, existing[0], {"run_dir": str(run_dir)})
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / EXIT_CODE_FILE).unlink(missing_ok=True)
        (run_dir / CONFIG_FILE).write_text(job.config.to_json())
        script = run_dir / SCRIPT_FILE
        script.write_text(self._script(job, run_dir))
        per_node = job.per_node
        command = [
            "sbatch",
            "--parsable",
            f"--job-name={job.name}",
            f"--nodes={job.nodes}",
            "--ntasks-per-node=1",
            # one task per node runs its nproc_per_node workers: it asks for all of theirs
            f"--cpus-per-task={per_node.whole_cpus()}",
            f"--mem={max(1, per_node.memory_mb)}M",
            f"--output={run_dir}/slurm-%j.out",
            f"--chdir={run_dir}",
            "--requeue",
            "--open-mode=append",
        ]
        if per_node.gpu:
            command.append(f"--gres=gpu:{per_node.gpu}")
        partition = job.options.get("partition", self.partition)
        if partition:
            command.append(f"--partition={partition}")
        if self.time_limit:
            # SIGTERM to the job's steps this long before the limit: a checkpoint, then a requeue
            grace = int(job.options.get("termination_grace_s", DEFAULT_GRACE_S))
            command += [f"--time={self.time_limit}", f"--signal=TERM@{grace}"]
        job_id = _run([*command, str(script)]).strip().split(";")[0]
        return JobHandle(self.name, job.name, job_id, {"run_dir": str(run_dir)})

    def status(self, handle: JobHandle) -> JobStatus:
        """From scontrol while slurmctld remembers the job, else from the recorded exit code."""
        fields = _job_fields(handle.id)
        run_dir = Path(handle.details["run_dir"])
        if fields is None:
            exit_file = run_dir / EXIT_CODE_FILE
            if not exit_file.is_file():
                return JobStatus(JobState.FAILED, f"SLURM job {handle.id} is unknown and left no exit code")
            code = int(exit_file.read_text().strip() or "1")
            state = state_of_exit_code(code)
            return JobStatus(state, "" if code == 0 else f"exit code {code}; last output:\n{self._tail(handle)}")
        slurm_state = fields.get("JobState", "UNKNOWN")
        state = _STATES.get(slurm_state, JobState.FAILED)
        if state is JobState.SUCCEEDED or state is JobState.PENDING or state is JobState.RUNNING:
            return JobStatus(state, fields.get("Reason", ""))
        reason = f"SLURM state {slurm_state} (reason {fields.get('Reason', 'None')}, exit {fields.get('ExitCode')})"
        return JobStatus(state, f"{reason}; last output:\n{self._tail(handle)}")

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """The job's output file."""
        path = Path(handle.details["run_dir"]) / f"slurm-{handle.id}.out"
        if path.is_file():
            yield from path.read_text(errors="replace").splitlines()

    def cancel(self, handle: JobHandle) -> None:
        """scancel the job."""
        _run(["scancel", handle.id])

    def suspend(self, handle: JobHandle) -> None:
        """SIGTERM to the job's steps: the workers checkpoint, and the job requeues itself."""
        _run(["scancel", "--signal=TERM", handle.id])

    def _script(self, job: TrainingJob, run_dir: Path) -> str:
        exports = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **job.env}
        rendezvous = (
            '--nnodes="$SLURM_NNODES"',
            '--rdzv-id="$SLURM_JOB_ID"',
            "--rdzv-backend=c10d",
            '--rdzv-endpoint="$head_node:$port"',
        )
        config_path = shlex.quote(str(run_dir / CONFIG_FILE))
        torchrun = torchrun_command([config_path], job.nproc_per_node, job.max_restarts, rendezvous, self.python)
        lines = [
            "#!/bin/bash",
            "# Written by kubeforge: one torchrun agent per node, rendezvous on the first node.",
            *(f"export {key}={shlex.quote(value)}" for key, value in exports.items()),
            'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            "port=$((20000 + SLURM_JOB_ID % 20000))",
            f"srun --kill-on-bad-exit=1 --ntasks-per-node=1 {' '.join(torchrun)}",
            "code=$?",
            "# preempted (SIGTERM, checkpointed): the same job goes back to the queue and resumes",
            f'if [ "$code" -eq {PREEMPTED_EXIT_CODE} ]; then scontrol requeue "$SLURM_JOB_ID" && exit 0; fi',
            f'echo "$code" > {shlex.quote(str(run_dir / EXIT_CODE_FILE))}',
            'exit "$code"',
        ]
        return "\n".join(lines) + "\n"

    def _tail(self, handle: JobHandle, lines: int = 30) -> str:
        return "\n".join(list(self.logs(handle))[-lines:])


def _job_fields(job_id: str) -> dict[str, str] | None:
    result = subprocess.run(
        ["scontrol", "show", "job", job_id, "--oneliner"], capture_output=True, text=True, env=os.environ, check=False
    )
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return None
        raise TrainingError(f"scontrol show job {job_id} failed: {result.stderr.strip()}")
    return dict(item.split("=", 1) for item in result.stdout.split() if "=" in item)


def _run(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise TrainingError(f"{command[0]} is not installed; the slurm backend needs the SLURM client tools") from exc
    if result.returncode != 0:
        raise TrainingError(f"{' '.join(command[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


__all__ = ["SlurmBackend"]
