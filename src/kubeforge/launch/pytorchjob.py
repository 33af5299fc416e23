"""The `pytorchjob` backend: a kubeflow.org/v1 PyTorchJob for the Kubeflow training operator.

Built with the kubeflow-training SDK's models: a Master replica plus `nodes - 1` Workers,
`nprocPerNode` processes each (the operator passes torchrun its PET_* rendezvous settings),
an elasticPolicy when restarts are allowed, a runPolicy, per-worker resources and GPUs,
tolerations, node selectors, and Kueue's queue label when a queue is named. A preempted pod
(SIGTERM within its termination grace: checkpoint, PREEMPTED_EXIT_CODE) is restarted by the
operator's ExitCode policy and resumes from the checkpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubeflow.training import models
from kubernetes import client

from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob
from kubeforge.launch.kubernetes import (
    CustomResourceBackend,
    container_resources,
    job_labels,
    last_true_condition,
    serialize,
    tolerations,
)

DEFAULT_GRACE_S = 120
RESTART_POLICY = "ExitCode"
"""Exit codes 128-255 (PREEMPTED_EXIT_CODE among them) restart the pod, which resumes; 1-127 fail the job."""
_CONDITIONS = {
    "Created": JobState.PENDING,
    "Running": JobState.RUNNING,
    "Restarting": JobState.RUNNING,
    "Succeeded": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Suspended": JobState.PENDING,
}


class PyTorchJobBackend(CustomResourceBackend):
    """Runs the training worker as a PyTorchJob."""

    name: ClassVar[str] = "pytorchjob"
    group: ClassVar[str] = "kubeflow.org"
    version: ClassVar[str] = "v1"
    plural: ClassVar[str] = "pytorchjobs"

    def build(self, job: TrainingJob) -> dict[str, Any]:
        """The PyTorchJob object for `job`."""
        options = job.options
        template = client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=job_labels(job)),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(
                        name="pytorch",
                        image=job.image,
                        command=job.worker_command(),
                        env=[client.V1EnvVar(name=k, value=v) for k, v in sorted(job.env.items())] or None,
                        resources=container_resources(job.per_node, job.gpu_type),
                    )
                ],
                tolerations=tolerations(job),
                node_selector=options.get("node_selector") or None,
                service_account_name=options.get("service_account"),
                # SIGTERM first: the workers finish their step and checkpoint within this grace
                termination_grace_period_seconds=int(options.get("termination_grace_s", DEFAULT_GRACE_S)),
            ),
        )
        replicas = {
            "Master": models.KubeflowOrgV1ReplicaSpec(replicas=1, restart_policy=RESTART_POLICY, template=template)
        }
        if job.nodes > 1:
            replicas["Worker"] = models.KubeflowOrgV1ReplicaSpec(
                replicas=job.nodes - 1, restart_policy=RESTART_POLICY, template=template
            )
        elastic = None
        if job.max_restarts:
            elastic = models.KubeflowOrgV1ElasticPolicy(
                rdzv_backend="c10d", min_replicas=job.nodes, max_replicas=job.nodes, max_restarts=job.max_restarts
            )
        spec = models.KubeflowOrgV1PyTorchJobSpec(
            nproc_per_node=str(job.nproc_per_node),
            pytorch_replica_specs=replicas,
            elastic_policy=elastic,
            run_policy=models.KubeflowOrgV1RunPolicy(
                backoff_limit=options.get("backoff_limit", 3),
                active_deadline_seconds=options.get("active_deadline_seconds"),
                ttl_seconds_after_finished=options.get("ttl_seconds_after_finished", 86_400),
                clean_pod_policy=options.get("clean_pod_policy", "Running"),
                suspend=bool(options.get("queue")) or None,
            ),
        )
        pytorch_job = models.KubeflowOrgV1PyTorchJob(
            api_version=f"{self.group}/{self.version}",
            kind="PyTorchJob",
            metadata=client.V1ObjectMeta(name=job.name, namespace=self.namespace, labels=job_labels(job)),
            spec=spec,
        )
        return serialize(self.api_client, pytorch_job)

    def state_of(self, obj: dict[str, Any]) -> JobStatus:
        """From the newest true condition (Created, Running, Restarting, Succeeded, Failed)."""
        condition, message = last_true_condition(obj)
        return JobStatus(_CONDITIONS.get(condition, JobState.PENDING), message)

    def suspend_patch(self) -> dict[str, Any]:
        """runPolicy.suspend = true."""
        return {"spec": {"runPolicy": {"suspend": True}}}

    def lead_pod_selector(self, handle: JobHandle) -> str:
        """The Master pod."""
        return f"training.kubeflow.org/job-name={handle.name},training.kubeflow.org/replica-type=master"


__all__ = ["PyTorchJobBackend"]
