"""The `trainjob` backend: a trainer.kubeflow.org/v1alpha1 TrainJob (Kubeflow Trainer v2).

Built with the Kubeflow SDK's trainer API models against a torch-distributed runtime
(`torch-distributed` ClusterTrainingRuntime by default); the runtime supplies torchrun's
rendezvous, the TrainJob the image, command, node count, processes per node and resources.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubeflow_trainer_api import models

from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob
from kubeforge.launch.kubernetes import (
    CustomResourceBackend,
    container_resources,
    job_labels,
    last_true_condition,
    serialize,
)

DEFAULT_RUNTIME = "torch-distributed"
_CONDITIONS = {
    "Created": JobState.PENDING,
    "Suspended": JobState.PENDING,
    "Complete": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
}


class TrainJobBackend(CustomResourceBackend):
    """Runs the training worker as a TrainJob."""

    name: ClassVar[str] = "trainjob"
    group: ClassVar[str] = "trainer.kubeflow.org"
    version: ClassVar[str] = "v1alpha1"
    plural: ClassVar[str] = "trainjobs"

    def build(self, job: TrainingJob) -> dict[str, Any]:
        """The TrainJob object for `job`."""
        command = job.worker_command()
        runtime = job.options.get("runtime", DEFAULT_RUNTIME)
        train_job = models.TrainerV1alpha1TrainJob.from_dict(
            {
                "apiVersion": f"{self.group}/{self.version}",
                "kind": "TrainJob",
                "metadata": {"name": job.name, "namespace": self.namespace, "labels": job_labels(job)},
                "spec": {
                    "runtimeRef": {"name": runtime, "apiGroup": self.group, "kind": "ClusterTrainingRuntime"},
                    "suspend": bool(job.options.get("queue")) or None,
                    "trainer": {
                        "image": job.image,
                        "command": command[:1],
                        "args": command[1:],
                        "env": [{"name": k, "value": v} for k, v in sorted(job.env.items())] or None,
                        "numNodes": job.nodes,
                        "numProcPerNode": job.nproc_per_node,
                        "resourcesPerNode": serialize(self.api_client, container_resources(job.per_node, job.gpu_type)),
                    },
                },
            }
        )
        assert train_job is not None
        return dict(train_job.to_dict())

    def state_of(self, obj: dict[str, Any]) -> JobStatus:
        """From the newest true condition (Created, Suspended, Complete, Failed); else running."""
        condition, message = last_true_condition(obj)
        if not condition and (obj.get("status") or {}).get("jobsStatus"):
            return JobStatus(JobState.RUNNING)
        return JobStatus(_CONDITIONS.get(condition, JobState.RUNNING if condition else JobState.PENDING), message)

    def suspend_patch(self) -> dict[str, Any]:
        """spec.suspend = true."""
        return {"spec": {"suspend": True}}

    def lead_pod_selector(self, handle: JobHandle) -> str:
        """The first node's pod of the JobSet the TrainJob creates."""
        return f"jobset.sigs.k8s.io/jobset-name={handle.name},batch.kubernetes.io/job-completion-index=0"


__all__ = ["DEFAULT_RUNTIME", "TrainJobBackend"]
