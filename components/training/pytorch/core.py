"""Training core: turns the component's parameters into a training job on the chosen backend.

The parameters are the same for every backend, so a pipeline moves from a laptop (`local`)
to SLURM, Kubernetes (`pytorchjob`, `trainjob`) or Vertex AI (`vertex`) by one parameter.
Backends that share this machine's filesystem read the artifacts' local paths; cluster
backends read and write their storage URIs (s3:// or gs://), and the model is copied back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubeforge
from kubeforge.artifacts import atomic_output_dir, is_remote, local_dir
from kubeforge.errors import InputError
from kubeforge.launch import BACKENDS, MAX_WORKERS, SHARED_FILESYSTEM_BACKENDS, create_backend
from kubeforge.launch.base import TrainingJob
from kubeforge.launch.runner import run_job
from kubeforge.launch.shared_filesystem import HANDLE_FILE, run_on_shared_filesystem
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.resources import Resources, parse_count, parse_cpu, parse_memory
from kubeforge.training.class_weighting import check_class_weighting
from kubeforge.training.config import Hyperparameters, TrainConfig

CONTAINER_RUN_DIR = "/tmp/kubeforge-run"
"""The run folder inside a cluster worker's container (its durable state lives under the staging URI)."""


@dataclass(frozen=True)
class TrainInputs:
    """Where training reads from: local paths, or storage URIs for cluster backends."""

    train_data: str
    validation_data: str
    preprocessor: str


@dataclass(frozen=True)
class TrainParams(Hyperparameters):
    """The component's parameters, identical across backends: the `Hyperparameters`, then the launch's."""

    backend: str = "local"
    workers: int = 2
    nproc_per_node: int = 0
    checkpoint_dir: str = ""
    max_restarts: int = 0
    image: str = kubeforge.IMAGE
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    backend_options: str = "{}"
    job_name: str = ""
    run_id: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend not in BACKENDS:
            raise InputError(f"backend is {self.backend!r}; valid backends: {', '.join(BACKENDS)}")
        limit = MAX_WORKERS[self.backend]
        if not 1 <= self.workers <= limit:
            raise InputError(f"workers is {self.workers}; the {self.backend} backend runs 1 to {limit} workers")
        per_node = self.processes_per_node
        if self.workers % per_node:
            raise InputError(f"workers ({self.workers}) must be a multiple of nproc_per_node ({per_node})")
        if self.backend not in SHARED_FILESYSTEM_BACKENDS and not self.image.strip():
            raise InputError(f"image: the {self.backend} backend runs the worker in a container; give its image")
        self.worker_resources()  # a bad quantity is refused before anything is written

    def worker_resources(self) -> Resources:
        """What each worker process asks for; a bad quantity raises InputError naming `cpu`, `memory` or `gpus`."""
        cpu, memory = parse_cpu(self.cpu, "cpu"), parse_memory(self.memory, "memory")
        return Resources(cpu, memory, parse_count(self.gpus, "gpus"))

    @property
    def processes_per_node(self) -> int:
        """Processes per node: all workers on one node for `local`, else nproc_per_node (default 1)."""
        if self.backend == "local":
            return self.workers
        return self.nproc_per_node or 1

    def options(self) -> dict[str, Any]:
        """backend_options parsed from JSON, errors naming the parameter."""
        try:
            options = json.loads(self.backend_options or "{}")
        except json.JSONDecodeError as exc:
            raise InputError(f"backend_options: not valid JSON ({exc.msg})") from exc
        if not isinstance(options, dict):
            raise InputError('backend_options: expected a JSON object such as {"namespace": "ml"}')
        return options


@dataclass
class TrainResult:
    """What a finished run reports: final metrics, the summary and the model's metadata."""

    final_metrics: dict[str, float]
    summary: dict[str, Any]
    model_metadata: dict[str, Any] = field(default_factory=dict)


def train_model(
    inputs: TrainInputs, model_dir: str, params: TrainParams, handle_path: str | None = None, staging_uri: str = ""
) -> TrainResult:
    """Run training and publish the Model directory at `model_dir` only if the run succeeds.

    Every place of the run is derived from the task's outputs, never a temporary folder, so a
    retried task finds what the first attempt left: on `local`, `slurm` and `queue` the run folder
    (log, handle, checkpoints) is `<model_dir>-run`; cluster backends keep handle, checkpoints and
    the model under `staging_uri` (s3:// or gs://), and the model is copied to `model_dir`. The job
    is named after `run_id` (else the outputs) and the configuration. Its handle is written to the
    run's place (and to `handle_path`) before the launcher waits: a re-run re-attaches to the job
    while it is queued or running, or resumes from the last checkpoint once it is gone.
    """
    options = params.options()
    shared = params.backend in SHARED_FILESYSTEM_BACKENDS
    if not shared:
        _require_remote(inputs, staging_uri, params)
    if params.class_weighting != "none":  # refused here, before any job starts, when the preprocessor cannot serve it
        preprocessor = FittedPreprocessor.load(inputs.preprocessor)
        check_class_weighting(params.class_weighting, preprocessor, inputs.preprocessor)
    backend = create_backend(params.backend, options)
    place = run_place(model_dir, staging_uri, shared)
    config = TrainConfig(
        train_data=inputs.train_data,
        validation_data=inputs.validation_data,
        preprocessor=inputs.preprocessor,
        model_dir=f"{place}/model",
        run_dir=place if shared else CONTAINER_RUN_DIR,
        checkpoint_dir=params.checkpoint_dir or f"{place}/checkpoints",
        **params.hyperparameters(),
    )
    job = TrainingJob(
        name=params.job_name or job_name(params.run_id or staging_uri or model_dir, config),
        config=config,
        nodes=params.workers // params.processes_per_node,
        nproc_per_node=params.processes_per_node,
        image=params.image,
        resources=params.worker_resources(),
        max_restarts=params.max_restarts,
        options=options,
    )
    kfp_handle = [handle_path] if handle_path else []
    if shared:
        summary = run_on_shared_filesystem(backend, job, poll_s=0.5, also_record_to=kfp_handle)
    else:
        run_job(backend, job, f"{place}/{HANDLE_FILE}", poll_s=10.0, also_record_to=kfp_handle)
    with atomic_output_dir(model_dir) as published, local_dir(config.model_dir) as staged:
        shutil.copytree(staged, published, dirs_exist_ok=True)
    if not shared:
        published_dir = Path(model_dir)
        summary = json.loads((published_dir / "kubeforge_model.json").read_text())["training"]
        summary["history"] = [
            json.loads(line) for line in (published_dir / "metrics_history.jsonl").read_text().splitlines()
        ]
    last = summary["history"][-1] if summary["history"] else {}
    metadata = {
        "framework": "pytorch",
        "format": "kubeforge.model/v1",
        "backend": params.backend,
        "world_size": summary["world_size"],
        "epochs": summary["epochs"],
        "resumed_from_epoch": summary["resumed_from_epoch"],
    }
    return TrainResult(
        final_metrics={k: float(v) for k, v in last.items() if k != "epoch"}, summary=summary, model_metadata=metadata
    )


def run_place(model_dir: str, staging_uri: str, shared: bool) -> str:
    """Where a run keeps its state, derived from the task's outputs so that a retry finds it."""
    return f"{model_dir.rstrip('/')}-run" if shared else staging_uri.rstrip("/")


def _require_remote(inputs: TrainInputs, staging_uri: str, params: TrainParams) -> None:
    for name in ("train_data", "validation_data", "preprocessor"):
        value = getattr(inputs, name)
        if not is_remote(value):
            raise InputError(
                f"{name} is the local path {value}; the {params.backend} backend's workers read s3:// or gs:// URIs "
                "(run the pipeline with a remote pipeline root)"
            )
    if not is_remote(staging_uri):
        raise InputError(f"the {params.backend} backend needs an s3:// or gs:// staging location for the model")


def job_name(key: str, config: TrainConfig) -> str:
    """A job name from the run's key (run_id, else the output location) and its configuration: a retried
    task gets the same name; changed parameters on the same outputs make a new job (resuming the checkpoint)."""
    digest = hashlib.sha256(f"{key}\n{config.to_json(indent=None)}".encode()).hexdigest()
    return f"kubeforge-train-{digest[:12]}"


__all__ = ["BACKENDS", "TrainInputs", "TrainParams", "TrainResult", "job_name", "run_place", "train_model"]
