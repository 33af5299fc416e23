"""The `vertex` backend: a Vertex AI CustomJob with one worker pool per role.

Pool 0 holds the first node (the rendezvous host), pool 1 the other `nodes - 1`. Vertex
describes the cluster to each replica in CLUSTER_SPEC; `kubeforge.launch.node` turns that
into torchrun's rendezvous flags. The job carries a `kubeforge-job` label, which is how a
re-run finds it again instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from kubeforge.errors import InputError, TrainingError
from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob
from kubeforge.resources import Resources

JOB_LABEL = "kubeforge-job"
_STATES = {
    "JOB_STATE_QUEUED": JobState.PENDING,
    "JOB_STATE_PENDING": JobState.PENDING,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_CANCELLING": JobState.RUNNING,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_PAUSED": JobState.PENDING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
}
_ACCELERATORS = {"nvidia.com/gpu": "NVIDIA_TESLA_T4"}
_N1_STANDARD_CPUS = (1, 2, 4, 8, 16, 32, 64, 96)
_N1_MIB_PER_CPU = 3840  # an n1-standard machine has 3.75 GB of memory per vCPU


def machine_type(per_node: Resources) -> str:
    """The smallest n1-standard machine holding one node's request (cores and memory); a request larger
    than the largest raises InputError asking for a `machine_type` option."""
    for cpus in _N1_STANDARD_CPUS:
        if cpus >= per_node.whole_cpus() and cpus * _N1_MIB_PER_CPU >= per_node.memory_mb:
            return f"n1-standard-{cpus}"
    raise InputError(
        f"resources: {per_node.cpu_quantity} cpu and {per_node.memory_quantity} per node exceed n1-standard-96; "
        "set backend_options.machine_type"
    )


class VertexBackend:
    """Runs the training worker as a Vertex AI CustomJob (google-cloud-aiplatform)."""

    name: ClassVar[str] = "vertex"

    def __init__(self, project: str, location: str, staging_bucket: str, **init_kwargs: Any):
        if not staging_bucket.startswith("gs://"):
            raise InputError(f"staging_bucket is {staging_bucket!r}; the vertex backend needs a gs:// bucket")
        try:
            from google.cloud import aiplatform
        except ImportError as exc:
            raise InputError("the vertex backend needs google-cloud-aiplatform: pip install 'kubeforge[gcp]'") from exc
        self.aiplatform = aiplatform
        aiplatform.init(project=project, location=location, staging_bucket=staging_bucket, **init_kwargs)

    def worker_pool_specs(self, job: TrainingJob) -> list[dict[str, Any]]:
        """Pool 0: the first node; pool 1: the remaining nodes; same container for both."""
        per_node = job.per_node
        machine: dict[str, Any] = {"machine_type": job.options.get("machine_type") or machine_type(per_node)}
        if per_node.gpu:
            machine["accelerator_type"] = job.options.get(
                "accelerator_type", _ACCELERATORS.get(job.gpu_type, "NVIDIA_TESLA_T4")
            )
            machine["accelerator_count"] = per_node.gpu
        command = job.worker_command()  # the node entry reads CLUSTER_SPEC for the rendezvous
        container = {
            "image_uri": job.image,
            "command": command[:1],
            "args": command[1:],
            "env": [{"name": k, "value": v} for k, v in sorted(job.env.items())],
        }
        pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": container}]
        if job.nodes > 1:
            pools.append({"machine_spec": machine, "replica_count": job.nodes - 1, "container_spec": container})
        return pools

    def submit(self, job: TrainingJob) -> JobHandle:
        """Create and start the CustomJob, unless a live one with this job's label exists."""
        for existing in self.aiplatform.CustomJob.list(filter=f"labels.{JOB_LABEL}={job.name}"):
            state = _STATES.get(existing.gca_resource.state.name, JobState.FAILED)
            if state in (JobState.PENDING, JobState.RUNNING):
                return JobHandle(self.name, job.name, existing.resource_name)
        custom_job = self.aiplatform.CustomJob(
            display_name=job.name,
            worker_pool_specs=self.worker_pool_specs(job),
            labels={JOB_LABEL: job.name},
        )
        try:
            custom_job.submit(
                service_account=job.options.get("service_account"),
                network=job.options.get("network"),
                timeout=job.options.get("active_deadline_seconds"),
                restart_job_on_worker_restart=job.max_restarts > 0,
            )
        except Exception as exc:
            raise TrainingError(f"Vertex AI refused CustomJob {job.name}: {exc}") from exc
        return JobHandle(self.name, job.name, custom_job.resource_name)

    def status(self, handle: JobHandle) -> JobStatus:
        """The CustomJob's state, with its error message when it failed."""
        custom_job = self.aiplatform.CustomJob.get(handle.id)
        state = _STATES.get(custom_job.state.name, JobState.FAILED)
        error = custom_job.gca_resource.error
        return JobStatus(state, error.message if error and error.message else "")

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """Vertex keeps job logs in Cloud Logging; say where, once."""
        yield f"logs of {handle.id} are in Cloud Logging (resource.type=ml_job, job_id={handle.id.rsplit('/', 1)[-1]})"

    def cancel(self, handle: JobHandle) -> None:
        """Ask Vertex to cancel the CustomJob."""
        self.aiplatform.CustomJob.get(handle.id).cancel()

    def suspend(self, handle: JobHandle) -> None:
        """Vertex AI cannot pause a CustomJob: refused, naming what to do instead."""
        raise TrainingError(
            f"Vertex AI CustomJob {handle.name} cannot be suspended: cancel it; a re-run resumes from its checkpoint"
        )


__all__ = ["JOB_LABEL", "VertexBackend"]
