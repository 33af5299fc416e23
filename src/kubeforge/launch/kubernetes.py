"""What the PyTorchJob and TrainJob backends share: one custom resource kind, created
idempotently through the Kubernetes API, followed through its conditions and its pods' logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeforge.errors import TrainingError
from kubeforge.kube_client import default_api_client
from kubeforge.launch.base import GPU_TYPE, JobHandle, JobState, JobStatus, TrainingJob
from kubeforge.resources import Resources

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def job_labels(job: TrainingJob) -> dict[str, str]:
    """Labels on every object kubeforge creates; a Kueue queue name adds Kueue's label."""
    labels = {MANAGED_BY_LABEL: "kubeforge", "kubeforge.io/job": job.name}
    queue = job.options.get("queue")
    if queue:
        labels[KUEUE_QUEUE_LABEL] = str(queue)
    return labels


def container_resources(amount: Resources, gpu_type: str = GPU_TYPE) -> client.V1ResourceRequirements:
    """Requests and limits of one container as Kubernetes quantities ("2", "500m", "4Gi"); GPUs go into
    limits under their resource name `gpu_type`."""
    requests: dict[str, str] = {"cpu": amount.cpu_quantity, "memory": amount.memory_quantity}
    limits = dict(requests)
    if amount.gpu:
        limits[gpu_type] = str(amount.gpu)
    return client.V1ResourceRequirements(requests=requests, limits=limits)


def tolerations(job: TrainingJob) -> list[client.V1Toleration] | None:
    """Tolerations from options, as dicts with key/operator/value/effect."""
    entries = job.options.get("tolerations") or []
    return [client.V1Toleration(**entry) for entry in entries] or None


class CustomResourceBackend:
    """Create/get/delete one namespaced custom resource kind and read its lead pod's logs."""

    name: ClassVar[str]
    group: ClassVar[str]
    version: ClassVar[str]
    plural: ClassVar[str]

    def __init__(self, namespace: str = "default", api_client: client.ApiClient | None = None):
        self.namespace = namespace
        self.api_client = api_client or default_api_client()
        self.objects = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def build(self, job: TrainingJob) -> dict[str, Any]:
        """The custom resource for `job`, as a JSON-ready dict."""
        raise NotImplementedError

    def state_of(self, obj: dict[str, Any]) -> JobStatus:
        """Map the resource's status to a JobStatus."""
        raise NotImplementedError

    def lead_pod_selector(self, handle: JobHandle) -> str:
        """A label selector that finds the pod whose log is the job's log."""
        raise NotImplementedError

    def suspend_patch(self) -> dict[str, Any]:
        """The merge patch that suspends the resource (its pods get SIGTERM and their grace)."""
        raise NotImplementedError

    def submit(self, job: TrainingJob) -> JobHandle:
        """Create the resource; an existing one of the same name is re-attached (409 -> get)."""
        body = self.build(job)
        try:
            self.objects.create_namespaced_custom_object(self.group, self.version, self.namespace, self.plural, body)
        except ApiException as exc:
            if exc.status != 409:
                raise self._error("create", job.name, exc) from exc
        return JobHandle(self.name, job.name, f"{self.namespace}/{job.name}", {"namespace": self.namespace})

    def status(self, handle: JobHandle) -> JobStatus:
        """The resource's state from its conditions; failed when it no longer exists (deleted, TTL)."""
        try:
            return self.state_of(self._get(handle))
        except ApiException as exc:
            if exc.status != 404:
                raise self._error("get", handle.name, exc) from exc
        return JobStatus(JobState.FAILED, f"{self.plural} {handle.id} no longer exists")

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """The lead pod's log so far (nothing while no pod exists yet)."""
        namespace = handle.details.get("namespace", self.namespace)
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=self.lead_pod_selector(handle)).items
            if not pods:
                return
            text = self.core.read_namespaced_pod_log(pods[0].metadata.name, namespace)
        except ApiException as exc:
            if exc.status in (400, 404):
                return
            raise self._error("read logs of", handle.name, exc) from exc
        yield from str(text).splitlines()

    def cancel(self, handle: JobHandle) -> None:
        """Delete the resource (its pods go with it)."""
        namespace = handle.details.get("namespace", self.namespace)
        try:
            self.objects.delete_namespaced_custom_object(self.group, self.version, namespace, self.plural, handle.name)
        except ApiException as exc:
            if exc.status != 404:
                raise self._error("delete", handle.name, exc) from exc

    def suspend(self, handle: JobHandle) -> None:
        """Suspend the resource: its pods stop (checkpointing on SIGTERM) until it is resumed, by Kueue say."""
        namespace = handle.details.get("namespace", self.namespace)
        try:
            self.objects.patch_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, handle.name, self.suspend_patch()
            )
        except ApiException as exc:
            raise self._error("suspend", handle.name, exc) from exc

    def _get(self, handle: JobHandle) -> dict[str, Any]:
        namespace = handle.details.get("namespace", self.namespace)
        obj = self.objects.get_namespaced_custom_object(self.group, self.version, namespace, self.plural, handle.name)
        return dict(obj)

    def _error(self, action: str, name: str, exc: ApiException) -> TrainingError:
        kind = f"{self.plural}.{self.group}/{self.version}"
        return TrainingError(f"could not {action} {kind} {self.namespace}/{name}: HTTP {exc.status} {exc.reason}")


def last_true_condition(obj: dict[str, Any]) -> tuple[str, str]:
    """The type and message of the newest condition whose status is True."""
    conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    if not conditions:
        return "", ""
    latest = conditions[-1]
    return str(latest.get("type", "")), str(latest.get("message", "") or latest.get("reason", ""))


def serialize(api_client: client.ApiClient, model: Any) -> dict[str, Any]:
    """An OpenAPI model object as the JSON-ready dict the API server receives."""
    return dict(api_client.sanitize_for_serialization(model))


__all__ = [
    "KUEUE_QUEUE_LABEL",
    "CustomResourceBackend",
    "JobState",
    "container_resources",
    "job_labels",
    "last_true_condition",
    "serialize",
    "tolerations",
]
