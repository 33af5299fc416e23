"""The scheduler's `kubernetes` backend, driven by the dispatcher.

No Kubernetes API server can run here, so the backend talks to a loopback HTTP server that
speaks the REST paths the real `kubernetes` client uses (batch/v1 Jobs, kubeflow.org
PyTorchJobs, pods and their logs, nodes): the real client code runs and the test plays the
Job controller and the training operator by setting status. batch/v1 Jobs are validated
with kubernetes-validate's Kubernetes 1.30 schema; PyTorchJobs against the upstream CRD in
../shared/crds (skipped when absent). The server enforces the RBAC the Helm chart renders (`helm
template`), and the backend authenticates as the chart's scheduler service account: a request the
chart does not grant fails as it would in a cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
from crd_schema import schema_errors
from fake_kube import FakeKube, running_fake_kube
from kube_rbac import chart_rbac
from kubernetes.client.rest import ApiException

from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import LOST_EXIT_CODE, stored_handle
from kubeforge.scheduler.backends.kubernetes import (
    STOPPED_EXIT_CODE,
    JobPodPolicy,
    KubernetesBackend,
    KubernetesBackendError,
    cluster_capacity,
)
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import Job, JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store import SqlStore, open_store

JOBS = ("batch/v1", "default", "jobs")
PYTORCHJOBS = ("kubeflow.org/v1", "default", "pytorchjobs")
TRAINING = {
    "train_data": "s3://data/train.parquet",
    "validation_data": "s3://data/validation.parquet",
    "preprocessor": "s3://data/preprocessor.json",
    "model_dir": "s3://runs/r1/model",
    "run_dir": "/tmp/kubeforge-run",
    "checkpoint_dir": "s3://runs/r1/checkpoints",
}


SCHEDULER = ("default", "kubeforge-scheduler")  # the chart's service account, release `kubeforge` in `default`


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with running_fake_kube(chart_rbac("default"), SCHEDULER) as server:
        yield server
        assert server.denied == []


def _dispatcher(kube: FakeKube, store_url: str, **options: Any) -> tuple[Dispatcher, KubernetesBackend, SqlStore]:
    store = open_store(store_url)
    store.put_queue(QueueSpec("q", Resources(8000, 32768, 2)))
    backend = KubernetesBackend(Resources(8000, 32768, 2), api_client=kube.api_client(), **options)
    dispatcher = Dispatcher(store, backend, grace_s=30)
    dispatcher.start()
    return dispatcher, backend, store


def _state(store: SqlStore, job_id: int) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


def test_command_gang_runs_as_an_indexed_job_and_follows_its_conditions(
    kube: FakeKube, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_ADMIN_TOKEN", "admin-secret-0123456789")  # the pods must not get it
    dispatcher, backend, store = _dispatcher(kube, store_url)
    spec = JobSpec("team-a", "q", ("sh", "-c", "echo rank-$JOB_COMPLETION_INDEX"), workers=3, max_runtime_s=600)
    ok = store.submit(spec, time.time())
    failing = store.submit(JobSpec("team-a", "q", ("false",), resources=Resources(500, 256)), time.time())
    dispatcher.step()
    created = kube.get(*JOBS, f"kf-{ok}-0")
    assert created is not None
    kubernetes_validate.validate(created, "1.30", strict=True)
    assert (created["spec"]["parallelism"], created["spec"]["completions"]) == (3, 3)
    assert created["spec"]["completionMode"] == "Indexed" and created["spec"]["backoffLimit"] == 0
    assert created["spec"]["activeDeadlineSeconds"] == 600 and not created["spec"]["suspend"]
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == list(spec.command)
    assert {"name": "KUBEFORGE_JOB_ID", "value": str(ok)} in container["env"]
    identity = ["KUBEFORGE_ATTEMPT", "KUBEFORGE_JOB_ID", "KUBEFORGE_LAUNCH_KEY", "KUBEFORGE_WORKERS"]
    assert sorted(variable["name"] for variable in container["env"]) == identity
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "512Mi"}
    assert _state(store, ok).state is JobState.RUNNING
    handle = _state(store, ok).handle
    assert handle == f"job/default/kf-{ok}-0"
    launched = stored_handle(backend.name, _state(store, ok))  # the typed handle, rebuilt from the stored text
    assert backend.submit(_state(store, ok)) == launched  # a repeated launch re-attaches (409)
    assert backend.status(launched).state is JobState.RUNNING
    assert sum(1 for method, _ in kube.requests if method == "POST") == 3

    labels = {"batch.kubernetes.io/job-name": f"kf-{ok}-0", "batch.kubernetes.io/job-completion-index": "0"}
    output = "rank-0\n" + "".join(f"line-{index:04d}\n" for index in range(20))
    kube.add_pod("default", f"kf-{ok}-0-0-abcde", labels, output)
    assert "".join(backend.logs(launched)) == output
    assert backend.log_range(handle, 2, 3).data == b"nk-"  # never more than offset + limit bytes asked for
    assert backend.log_range(handle, None, 64).data == output.encode()[-64:]  # the tail
    assert [(query.get("limitBytes"), query.get("tailLines")) for query in kube.log_queries[-2:]] == [
        ("5", None),
        ("512", "8"),
    ]
    kube.set_status(*JOBS, f"kf-{ok}-0", {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 3})
    kube.set_status(*JOBS, f"kf-{failing}-0", {"conditions": [{"type": "Failed", "status": "True"}]})
    dispatcher.step()
    assert _state(store, ok).state is JobState.SUCCEEDED
    failed = _state(store, failing)
    assert failed.state is JobState.FAILED and failed.exit_code == 1
    store.close()


def test_training_spec_becomes_a_valid_pytorchjob_and_kueue_mode_creates_it_suspended(
    kube: FakeKube, store_url: str
) -> None:
    dispatcher, _, store = _dispatcher(kube, store_url, kueue_queue="team-a-queue")
    spec = JobSpec.from_dict(
        {
            "team": "team-a",
            "queue": "q",
            "training": TRAINING,
            "workers": 2,
            "resources": {"cpu": 2, "memory": "4Gi", "gpu": 1},
        }
    )
    job_id = store.submit(spec, time.time())
    dispatcher.step()
    created = kube.get(*PYTORCHJOBS, f"kf-{job_id}-0")
    assert created is not None
    assert schema_errors(created, "kubeflow.org_pytorchjobs.yaml") == []
    replicas = created["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 1
    assert created["spec"]["runPolicy"]["suspend"] is True  # Kueue unsuspends it on admission
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    limits = replicas["Master"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert _state(store, job_id).handle == f"pytorchjob/default/kf-{job_id}-0"
    kube.set_status(*PYTORCHJOBS, f"kf-{job_id}-0", {"conditions": [{"type": "Running", "status": "True"}]})
    dispatcher.step()
    assert _state(store, job_id).state is JobState.RUNNING  # suspended by Kueue is not ended
    store.close()


def test_cancel_suspends_then_the_job_ends_once_its_pods_are_gone(kube: FakeKube, store_url: str) -> None:
    dispatcher, backend, store = _dispatcher(kube, store_url)
    job_id = store.submit(JobSpec("team-a", "q", ("sleep", "600")), time.time())
    dispatcher.step()
    name = f"kf-{job_id}-0"
    kube.set_status(*JOBS, name, {"active": 1})
    assert store.request_cancel(job_id)
    dispatcher.step()
    suspended = kube.get(*JOBS, name)
    assert suspended is not None and suspended["spec"]["suspend"] is True
    assert suspended["metadata"]["annotations"] == {"kubeforge.io/stop-requested": "true"}
    assert _state(store, job_id).state is JobState.STOPPING
    dispatcher.step()
    assert _state(store, job_id).state is JobState.STOPPING  # pods still terminating
    kube.set_status(*JOBS, name, {"active": 0, "conditions": [{"type": "Suspended", "status": "True"}]})
    assert backend.poll({job_id: f"job/default/{name}"}) == {job_id: STOPPED_EXIT_CODE}
    dispatcher.step()
    assert _state(store, job_id).state is JobState.CANCELLED
    backend.cancel(JobHandle(backend.name, name, f"job/default/{name}"))
    assert kube.get(*JOBS, name) is None
    assert backend.poll({job_id: f"job/default/{name}"}) == {job_id: LOST_EXIT_CODE}
    store.close()


def test_capacity_is_the_sum_of_schedulable_nodes(kube: FakeKube) -> None:
    def node(name: str, cpu: str, memory: str, gpus: str, unschedulable: bool = False) -> dict[str, Any]:
        allocatable = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus}
        return {
            "metadata": {"name": name},
            "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": allocatable},
        }

    kube.nodes.extend(
        [node("a", "7910m", "30Gi", "4"), node("b", "8", "16384Mi", "0"), node("cordoned", "64", "1Ti", "8", True)]
    )
    assert cluster_capacity(kube.api_client()) == Resources(15910, 30 * 1024 + 16384, 4)


def test_job_pods_are_restricted_run_as_the_job_account_and_tolerate_gpus_only_when_asked(
    kube: FakeKube, store_url: str
) -> None:
    policy = JobPodPolicy.from_environment(
        {
            "KUBEFORGE_JOB_SERVICE_ACCOUNT": "kubeforge-job",
            "KUBEFORGE_JOB_GPU_TOLERATION": '{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}',
            "KUBEFORGE_JOB_ALLOWED_IMAGES": '{"q": ["registry.test/team-a:1"]}',
        }
    )
    dispatcher, _, store = _dispatcher(kube, store_url, pod_policy=policy)
    cpu = store.submit(JobSpec("team-a", "q", ("true",), image="registry.test/team-a:1"), time.time())
    training = {
        "team": "team-a",
        "queue": "q",
        "training": TRAINING,
        "resources": {"gpu": 1},
        "image": "registry.test/team-a:1",
    }
    gpu = store.submit(JobSpec.from_dict(training), time.time())
    dispatcher.step()
    created = kube.get(*JOBS, f"kf-{cpu}-0")
    assert created is not None
    kubernetes_validate.validate(created, "1.30", strict=True)
    pytorchjob = kube.get(*PYTORCHJOBS, f"kf-{gpu}-0")
    assert pytorchjob is not None and schema_errors(pytorchjob, "kubeflow.org_pytorchjobs.yaml") == []
    pods = [
        created["spec"]["template"]["spec"],
        pytorchjob["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"],
    ]
    for pod in pods:
        assert pod["serviceAccountName"] == "kubeforge-job" and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        container = pod["containers"][0]["securityContext"]
        assert container["allowPrivilegeEscalation"] is False and container["capabilities"] == {"drop": ["ALL"]}
    assert "tolerations" not in pods[0]
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in pods[1]["tolerations"]
    assert pods[0]["containers"][0]["image"] == "registry.test/team-a:1"
    store.close()


def test_an_image_the_queue_does_not_allow_never_reaches_the_cluster(kube: FakeKube, store_url: str) -> None:
    dispatcher, _, store = _dispatcher(kube, store_url)  # default policy: the kubeforge image only
    job_id = store.submit(JobSpec("team-a", "q", ("true",), image="docker.io/attacker/miner:latest"), time.time())
    dispatcher.step()
    assert not kube.objects.get(JOBS)
    job = _state(store, job_id)
    assert "image: 'docker.io/attacker/miner:latest' is not allowed on queue 'q'" in job.reason
    store.close()


# The Role the chart shipped before RBAC was proven: no batch/jobs, no nodes.
_OLD_ROLE = [
    {
        "kind": "Role",
        "metadata": {"name": "kubeforge-scheduler", "namespace": "default"},
        "rules": [
            {"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"], "verbs": ["get", "list", "watch", "create"]},
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
        ],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "kubeforge-scheduler", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "kubeforge-scheduler"},
        "subjects": [{"kind": "ServiceAccount", "name": "kubeforge-scheduler", "namespace": "default"}],
    },
]


def test_the_old_role_is_refused_batch_jobs_and_nodes_as_the_api_server_would(store_url: str) -> None:
    from kube_rbac import RBAC

    with running_fake_kube(RBAC.from_documents(_OLD_ROLE), SCHEDULER) as kube:
        with pytest.raises(ApiException) as refused:
            cluster_capacity(kube.api_client())
        assert refused.value.status == 403
        dispatcher, _, store = _dispatcher(kube, store_url)
        job_id = store.submit(JobSpec("team-a", "q", ("true",)), time.time())
        dispatcher.step()
        assert "HTTP 403" in _state(store, job_id).reason
        store.close()
        user = "system:serviceaccount:default:kubeforge-scheduler"
        assert kube.denied == [
            f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope',
            f'jobs.batch is forbidden: User "{user}" cannot create resource "jobs" in API group "batch" in the'
            ' namespace "default"',
        ]


def test_with_capacity_given_the_chart_grants_no_node_read_and_other_accounts_get_nothing(store_url: str) -> None:
    rbac = chart_rbac(
        "default", "scheduler.capacity.cpu=8", "scheduler.capacity.memory=32Gi", "scheduler.capacity.gpu=0"
    )
    with running_fake_kube(rbac, SCHEDULER) as kube:
        with pytest.raises(ApiException) as refused:
            cluster_capacity(kube.api_client())
        assert refused.value.status == 403 and json.loads(refused.value.body)["reason"] == "Forbidden"
    with running_fake_kube(rbac, ("default", "kubeforge-job")) as kube:  # job pods' account: no rights at all
        dispatcher, _, store = _dispatcher(kube, store_url)
        job_id = store.submit(JobSpec("team-a", "q", ("true",)), time.time())
        dispatcher.step()
        assert "HTTP 403" in _state(store, job_id).reason
        store.close()
    other = ("other-namespace", "kubeforge-scheduler")  # the same name in the wrong namespace gets nothing
    with running_fake_kube(rbac, other) as kube, pytest.raises(KubernetesBackendError, match="HTTP 403 Forbidden"):
        backend = KubernetesBackend(Resources(1000, 1024), api_client=kube.api_client())
        "".join(backend.logs(JobHandle(backend.name, "kf-1-0", "job/default/kf-1-0")))


def test_a_stalled_api_server_fails_calls_instead_of_hanging_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """An API server that accepts connections and never answers: every call gives up after its read timeout."""
    import socket

    import urllib3
    from kubernetes import client

    from kubeforge.scheduler.backends import kubernetes as kubernetes_backend

    monkeypatch.setattr(kubernetes_backend, "REQUEST_TIMEOUT", (1.0, 0.5))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        configuration = client.Configuration(host=f"http://127.0.0.1:{silent.getsockname()[1]}")
        configuration.retries = False
        backend = KubernetesBackend(Resources(1000, 1024), api_client=client.ApiClient(configuration))
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            backend.poll({1: "job/default/kf-1-0"})
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            backend.cancel(JobHandle(backend.name, "kf-1-0", "pytorchjob/default/kf-1-0"))
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            cluster_capacity(backend.api_client)
