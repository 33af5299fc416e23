"""The launch layer: training jobs on local, slurm, pytorchjob, trainjob, vertex or queue, chosen by name.

One protocol (`base.LaunchBackend`: submit, status, logs, cancel, suspend), one typed handle
(`base.JobHandle`), one state enum (`state.JobState`), one resources type (`kubeforge.resources`)
and one torchrun command (`torchrun.torchrun_command`, run under `node`, which reports preemption).
The scheduler's backends implement the same protocol for its jobs (`kubeforge.scheduler.backends`),
so the scheduler sits above this package and the training engine below it. `runner` submits or
re-attaches and follows a job; `shared_filesystem` runs one on this machine's filesystem and reads
its summary back. The queue backend reaches the scheduler only through `kubeforge.scheduler_client`.
"""

from __future__ import annotations

from typing import Any

from kubeforge.errors import InputError
from kubeforge.launch.base import LaunchBackend, TrainingJob

BACKENDS = ("local", "slurm", "pytorchjob", "trainjob", "vertex", "queue")
# queue: the kubeforge scheduler; shared when its local (or slurm) backend runs the job on this filesystem
SHARED_FILESYSTEM_BACKENDS = ("local", "slurm", "queue")
MAX_WORKERS = {"local": 64, "slurm": 4096, "pytorchjob": 2048, "trainjob": 2048, "vertex": 1024, "queue": 64}


def create_backend(name: str, options: dict[str, Any]) -> LaunchBackend[TrainingJob]:
    """The backend called `name`, configured from its options (namespace, project, partition...)."""
    if name == "local":
        from kubeforge.launch.local import LocalBackend

        return LocalBackend()
    if name == "slurm":
        from kubeforge.launch.slurm import SlurmBackend

        return SlurmBackend(partition=options.get("partition"), time_limit=options.get("time_limit"))
    if name in ("pytorchjob", "trainjob"):
        from kubeforge.launch.pytorchjob import PyTorchJobBackend
        from kubeforge.launch.trainjob import TrainJobBackend

        backend_class = PyTorchJobBackend if name == "pytorchjob" else TrainJobBackend
        return backend_class(namespace=options.get("namespace", "default"))
    if name == "vertex":
        from kubeforge.launch.vertex import VertexBackend

        missing = [key for key in ("project", "location", "staging_bucket") if not options.get(key)]
        if missing:
            raise InputError(f"backend_options: the vertex backend needs {', '.join(missing)}")
        return VertexBackend(options["project"], options["location"], options["staging_bucket"])
    if name == "queue":
        from kubeforge.launch.queue import QueueBackend

        return QueueBackend(options)
    raise InputError(f"backend is {name!r}; valid backends: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "MAX_WORKERS", "SHARED_FILESYSTEM_BACKENDS", "create_backend"]
