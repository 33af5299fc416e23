"""The `kubernetes` backend: a PyTorchJob for training specs, an indexed batch/v1 Job for commands.

The launch key is the object's name, so a launch repeated after a crash meets 409 and
re-attaches. With `kueue_queue` set, objects are created suspended with Kueue's
`kueue.x-k8s.io/queue-name` label and Kueue decides when they start. Stopping a job
suspends it (the platform sends SIGTERM and waits the pods' grace period) and marks it
with `STOP_ANNOTATION`; once no pod is left the launch counts as ended. Cancelling
deletes the object.

Every job pod follows the `JobPodPolicy`: the restricted Pod Security Standard (non-root UID 10001, no
privilege escalation, no capabilities, seccomp RuntimeDefault), a dedicated service account whose token
is not mounted, the GPU toleration on GPU jobs, and only images the job's queue allows (by default the
kubeforge image alone). The chart passes the policy through the job-pod environment variables in `kubeforge.settings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kubernetes import client
from kubernetes.client.rest import ApiException

import kubeforge
from kubeforge import settings
from kubeforge.errors import InputError, KubernetesBackendError
from kubeforge.launch.base import JobHandle
from kubeforge.launch.kubernetes import container_resources
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import (
    LOST_EXIT_CODE,
    PolledLaunch,
    job_command,
    job_environment,
    training_config,
)
from kubeforge.scheduler.logs import LogSlice, slice_of
from kubeforge.scheduler.model import Job

STOP_ANNOTATION = "kubeforge.io/stop-requested"
REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for every Kubernetes API call: a stalled API server fails the call, not the dispatcher."""
STOPPED_EXIT_CODE = -15
"""Reported for a launch that ended because it was suspended (as SIGTERM would)."""
_KUEUE_LABEL = "kueue.x-k8s.io/queue-name"
_TRAINING_GROUP, _TRAINING_VERSION, _TRAINING_PLURAL = "kubeflow.org", "v1", "pytorchjobs"
JOB_SERVICE_ACCOUNT_ENV = settings.JOB_SERVICE_ACCOUNT.name
JOB_GPU_TOLERATION_ENV = settings.JOB_GPU_TOLERATION.name
JOB_ALLOWED_IMAGES_ENV = settings.JOB_ALLOWED_IMAGES.name
JOB_UID = 10001
"""The image's user (see the Dockerfile); job pods run as it."""
ANY_QUEUE = "*"


@dataclass(frozen=True)
class JobPodPolicy:
    """What every job pod gets: its service account, the GPU toleration, and the images each queue may run.

    `allowed_images` maps a queue name (or `*`, for queues not named) to the images its jobs may use.
    """

    service_account: str = ""
    gpu_toleration: Mapping[str, str] = field(default_factory=dict)
    allowed_images: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {ANY_QUEUE: (kubeforge.IMAGE,)})

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JobPodPolicy:
        """The policy the chart sets in the job-pod variables of `kubeforge.settings`; unset parts keep defaults."""
        try:
            toleration = json.loads(settings.JOB_GPU_TOLERATION.read(environ) or "{}")
            images = json.loads(settings.JOB_ALLOWED_IMAGES.read(environ) or "{}")
        except json.JSONDecodeError as exc:
            raise InputError(f"{JOB_GPU_TOLERATION_ENV} / {JOB_ALLOWED_IMAGES_ENV}: not valid JSON ({exc})") from exc
        if not isinstance(images, dict) or not all(isinstance(v, list) for v in images.values()):
            raise InputError(f'{JOB_ALLOWED_IMAGES_ENV}: expected {{"QUEUE or *": ["IMAGE", ...]}}')
        allowed = {str(queue): tuple(map(str, names)) for queue, names in images.items()}
        return cls(
            service_account=settings.JOB_SERVICE_ACCOUNT.read(environ),
            gpu_toleration={str(k): str(v) for k, v in dict(toleration).items()},
            allowed_images=allowed or {ANY_QUEUE: (kubeforge.IMAGE,)},
        )

    def image(self, job: Job) -> str:
        """The job's image, once its queue allows it."""
        image = job.spec.image or kubeforge.IMAGE
        allowed = self.allowed_images.get(job.spec.queue, self.allowed_images.get(ANY_QUEUE, ()))
        if image not in allowed:
            raise InputError(
                f"image: {image!r} is not allowed on queue {job.spec.queue!r}; "
                f"use one of {', '.join(allowed) or '(none)'} or ask an admin to allow it"
            )
        return image

    def apply(self, pod_spec: dict[str, Any], gpu: bool) -> None:
        """Bring one serialized pod spec (camelCase keys) under the policy, in place."""
        if self.service_account:
            pod_spec["serviceAccountName"] = self.service_account
        pod_spec["automountServiceAccountToken"] = False
        pod_spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": JOB_UID,
            "runAsGroup": JOB_UID,
            "fsGroup": JOB_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        if gpu and self.gpu_toleration:
            tolerations = pod_spec.setdefault("tolerations", [])
            if dict(self.gpu_toleration) not in tolerations:
                tolerations.append(dict(self.gpu_toleration))
        for container in pod_spec.get("containers", []):
            container["securityContext"] = {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            }


class KubernetesBackend(PolledLaunch):
    """Runs each job as one Kubernetes object in `namespace`; handles are `KIND/NAMESPACE/NAME`."""

    name: ClassVar[str] = "kubernetes"

    def __init__(
        self,
        capacity: Resources,
        namespace: str = "default",
        kueue_queue: str = "",
        api_client: client.ApiClient | None = None,
        pod_policy: JobPodPolicy | None = None,
    ) -> None:
        if api_client is None:
            from kubeforge.kube_client import default_api_client

            api_client = default_api_client()
        self.capacity = capacity
        self.namespace = namespace
        self.kueue_queue = kueue_queue
        self.api_client = api_client
        self.pod_policy = pod_policy or JobPodPolicy()
        self.batch = client.BatchV1Api(api_client)
        self.objects = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self._reasons: dict[str, str] = {}

    # -- building ---------------------------------------------------------------------------

    def build(self, job: Job) -> dict[str, Any]:
        """The object that runs `job`: a PyTorchJob for a training spec, else a batch Job."""
        return self._pytorch_job(job) if job.spec.training is not None else self._batch_job(job)

    def _labels(self, job: Job) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/managed-by": "kubeforge",
            "kubeforge.io/job-id": str(job.id),
            "kubeforge.io/team": job.spec.team,
        }
        if self.kueue_queue:
            labels[_KUEUE_LABEL] = self.kueue_queue
        return labels

    def _batch_job(self, job: Job) -> dict[str, Any]:
        resources = container_resources(job.spec.resources)
        container = client.V1Container(
            name="job",
            image=self.pod_policy.image(job),
            command=job_command(job),
            env=[client.V1EnvVar(name=key, value=value) for key, value in sorted(job_environment(job).items())],
            resources=resources,
        )
        body = client.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=client.V1ObjectMeta(name=job.launch_key, namespace=self.namespace, labels=self._labels(job)),
            spec=client.V1JobSpec(
                parallelism=job.spec.workers,
                completions=job.spec.workers,
                completion_mode="Indexed",
                backoff_limit=0,  # the scheduler retries, with its own backoff
                active_deadline_seconds=max(1, int(job.spec.max_runtime_s)),
                suspend=bool(self.kueue_queue),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=self._labels(job)),
                    spec=client.V1PodSpec(containers=[container], restart_policy="Never"),
                ),
            ),
        )
        built = dict(self.api_client.sanitize_for_serialization(body))
        self.pod_policy.apply(built["spec"]["template"]["spec"], gpu=job.spec.resources.gpu > 0)
        return built

    def _pytorch_job(self, job: Job) -> dict[str, Any]:
        from kubeforge.launch.base import TrainingJob
        from kubeforge.launch.pytorchjob import PyTorchJobBackend

        per_worker = job.spec.resources
        training = TrainingJob(
            name=job.launch_key,
            config=training_config(job),
            nodes=job.spec.workers,
            image=self.pod_policy.image(job),
            resources=per_worker,
            env=job_environment(job),
            options={
                "queue": self.kueue_queue,
                "backoff_limit": 0,  # the scheduler retries, with its own backoff
                "active_deadline_seconds": max(1, int(job.spec.max_runtime_s)),
            },
        )
        body = PyTorchJobBackend(self.namespace, self.api_client).build(training)
        body["metadata"]["labels"] = {**body["metadata"].get("labels", {}), **self._labels(job)}
        for replica in body["spec"]["pytorchReplicaSpecs"].values():
            self.pod_policy.apply(replica["template"]["spec"], gpu=per_worker.gpu > 0)
        return body

    # -- the protocol -----------------------------------------------------------------------

    def submit(self, job: Job) -> JobHandle:
        """Create the object unless one with the launch key exists; the handle's id is `KIND/NAMESPACE/KEY`."""
        body = self.build(job)
        kind = "pytorchjob" if body["kind"] == "PyTorchJob" else "job"
        try:
            if kind == "job":
                self.batch.create_namespaced_job(self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
            else:
                self.objects.create_namespaced_custom_object(
                    _TRAINING_GROUP,
                    _TRAINING_VERSION,
                    self.namespace,
                    _TRAINING_PLURAL,
                    body,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except ApiException as exc:
            if exc.status != 409:
                raise _error("create", f"{kind} {self.namespace}/{job.launch_key}", exc) from exc
        return JobHandle(self.name, job.launch_key, f"{kind}/{self.namespace}/{job.launch_key}")

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        """Exit codes of ended launches: 0 on success, 1 on failure, -15 once suspended, -1 when gone."""
        ended: dict[int, int] = {}
        for job_id, handle in handles.items():
            obj = self._get(handle)
            code = LOST_EXIT_CODE if obj is None else _exit_code(obj)
            if code is not None:
                ended[job_id] = code
                if obj is not None and code not in (0, STOPPED_EXIT_CODE):
                    self._reasons[handle] = _failure_message(obj)
        return ended

    def reason(self, handle: str) -> str:
        """The message of the object's Failed condition, once `poll` saw it fail; '' otherwise."""
        return self._reasons.pop(handle, "")

    def suspend(self, handle: JobHandle) -> None:
        """Suspend the object: its pods get SIGTERM and their grace period; it ends once none is left."""
        kind, namespace, name = _split(handle.id)
        patch: dict[str, Any] = {"metadata": {"annotations": {STOP_ANNOTATION: "true"}}}
        try:
            if kind == "job":
                self.batch.patch_namespaced_job(
                    name, namespace, {**patch, "spec": {"suspend": True}}, _request_timeout=REQUEST_TIMEOUT
                )
            else:
                patch["spec"] = {"runPolicy": {"suspend": True}}
                self.objects.patch_namespaced_custom_object(
                    _TRAINING_GROUP,
                    _TRAINING_VERSION,
                    namespace,
                    _TRAINING_PLURAL,
                    name,
                    patch,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except ApiException as exc:
            if exc.status != 404:
                raise _error("suspend", handle.id, exc) from exc

    def cancel(self, handle: JobHandle) -> None:
        """Delete the object and its pods now."""
        kind, namespace, name = _split(handle.id)
        options = client.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=0)
        try:
            if kind == "job":
                self.batch.delete_namespaced_job(name, namespace, body=options, _request_timeout=REQUEST_TIMEOUT)
            else:
                self.objects.delete_namespaced_custom_object(
                    _TRAINING_GROUP,
                    _TRAINING_VERSION,
                    namespace,
                    _TRAINING_PLURAL,
                    name,
                    body=options,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except ApiException as exc:
            if exc.status != 404:
                raise _error("delete", handle.id, exc) from exc

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        """A range of the first worker's log, read with the kubelet's `limit_bytes` so that it is never read
        whole: from `offset`, or (offset None) its last `limit` bytes, taken from its last `limit // 8` lines
        (the kubelet tails by lines only; those lines are read up to 8 x `limit` bytes, so the tail is exact
        for lines of 8 to 64 bytes on average)."""
        if offset is None:
            window = self._pod_log(handle, tail_lines=max(limit // 8, 1), limit_bytes=8 * limit)
            return slice_of(window, None, limit)
        return slice_of(self._pod_log(handle, limit_bytes=offset + limit), offset, limit)

    def _pod_log(self, handle: str, **options: int) -> bytes:
        kind, namespace, name = _split(handle)
        selector = (
            f"batch.kubernetes.io/job-name={name},batch.kubernetes.io/job-completion-index=0"
            if kind == "job"
            else f"training.kubeflow.org/job-name={name},training.kubeflow.org/replica-type=master"
        )
        try:
            pods = self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
            ).items
            if not pods:
                return b""
            response = self.core.read_namespaced_pod_log(
                pods[0].metadata.name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **options
            )
            return bytes(response.data)
        except ApiException as exc:
            if exc.status in (400, 404):
                return b""
            raise _error("read logs of", handle, exc) from exc

    def _get(self, handle: str) -> dict[str, Any] | None:
        kind, namespace, name = _split(handle)
        try:
            if kind == "job":
                response = self.batch.read_namespaced_job(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
                return dict(json.loads(response.data))
            found = self.objects.get_namespaced_custom_object(
                _TRAINING_GROUP, _TRAINING_VERSION, namespace, _TRAINING_PLURAL, name, _request_timeout=REQUEST_TIMEOUT
            )
            return dict(found)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _error("get", handle, exc) from exc


def cluster_capacity(api_client: client.ApiClient) -> Resources:
    """The sum of every schedulable node's allocatable cpu, memory and nvidia.com/gpu."""
    from kubeforge.resources import parse_cpu, parse_memory

    total = Resources()
    for node in client.CoreV1Api(api_client).list_node(_request_timeout=REQUEST_TIMEOUT).items:
        if node.spec is not None and node.spec.unschedulable:
            continue
        allocatable = (node.status.allocatable if node.status else None) or {}
        total = total + Resources(
            parse_cpu(allocatable.get("cpu", "0"), "node cpu"),
            parse_memory(allocatable.get("memory", "0"), "node memory"),
            int(allocatable.get("nvidia.com/gpu", "0")),
        )
    return total


def _exit_code(obj: dict[str, Any]) -> int | None:
    status = obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True" or conditions.get("Succeeded") == "True":
        return 0
    if conditions.get("Failed") == "True":
        return 1
    stop_requested = ((obj.get("metadata") or {}).get("annotations") or {}).get(STOP_ANNOTATION) == "true"
    if stop_requested and conditions.get("Suspended") == "True" and not status.get("active"):
        return STOPPED_EXIT_CODE
    return None


def _failure_message(obj: dict[str, Any]) -> str:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return str(condition.get("message") or condition.get("reason") or "")[:500]
    return ""


def _split(handle: str) -> tuple[str, str, str]:
    kind, namespace, name = handle.split("/", 2)
    return kind, namespace, name


def _error(action: str, what: str, exc: ApiException) -> KubernetesBackendError:
    return KubernetesBackendError(f"could not {action} {what}: HTTP {exc.status} {exc.reason}")


__all__ = [
    "JOB_ALLOWED_IMAGES_ENV",
    "JOB_GPU_TOLERATION_ENV",
    "JOB_SERVICE_ACCOUNT_ENV",
    "STOPPED_EXIT_CODE",
    "STOP_ANNOTATION",
    "JobPodPolicy",
    "KubernetesBackend",
    "KubernetesBackendError",
    "cluster_capacity",
]
