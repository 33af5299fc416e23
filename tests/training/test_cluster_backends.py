"""The pytorchjob, trainjob and vertex backends.

No Kubernetes API server or Vertex AI can run here, so each test talks to a loopback HTTP
server that speaks the REST paths the real clients use (the `kubernetes` client's custom
objects and pods; aiplatform's REST transport for CustomJobs): the real client library code
runs, and the test plays the operator. The objects sent are validated against the upstream
CRD schemas in ../shared/crds. The Kubernetes stand-in enforces the RBAC the Helm chart renders, and
the backends authenticate as the chart's pipeline service account (what a launcher step runs as).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from crd_schema import schema_errors
from fake_kube import FakeKube, running_fake_kube
from fake_vertex import FakeVertex, running_fake_vertex
from kube_rbac import chart_rbac

from kubeforge.errors import InputError, TrainingError
from kubeforge.launch.base import JobState, TrainingJob
from kubeforge.launch.node import rendezvous_flags
from kubeforge.launch.pytorchjob import PyTorchJobBackend
from kubeforge.launch.runner import follow, run_job, submit_or_attach
from kubeforge.launch.trainjob import TrainJobBackend
from kubeforge.launch.vertex import VertexBackend, machine_type
from kubeforge.resources import Resources, parse_cpu, parse_memory
from kubeforge.training.config import TrainConfig

CONFIG = TrainConfig(
    train_data="s3://data/train.parquet",
    validation_data="s3://data/validation.parquet",
    preprocessor="s3://data/preprocessor.json",
    model_dir="s3://runs/r1/model",
    run_dir="/tmp/kubeforge-run",
    checkpoint_dir="s3://runs/r1/checkpoints",
)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _job(**overrides: Any) -> TrainingJob:
    values: dict[str, Any] = {
        "name": "churn-train",
        "config": CONFIG,
        "nodes": 2,
        "nproc_per_node": 2,
        "max_restarts": 3,
        "resources": Resources(cpu_m=4000, memory_mb=16 * 1024, gpu=1),  # per worker; 2 workers a node
        "options": {"queue": "team-a", "tolerations": [GPU_TOLERATION], "node_selector": {"pool": "gpu"}},
    }
    return TrainingJob(**{**values, **overrides})


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with running_fake_kube(chart_rbac("default"), ("default", "kubeforge-pipeline")) as server:
        yield server
        assert server.denied == []


def test_pytorchjob_object_is_valid_and_complete(kube: FakeKube) -> None:
    obj = PyTorchJobBackend(api_client=kube.api_client()).build(_job())

    assert schema_errors(obj, "kubeflow.org_pytorchjobs.yaml") == []
    spec = obj["spec"]
    assert spec["nprocPerNode"] == "2"
    assert spec["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1
    assert spec["elasticPolicy"]["maxRestarts"] == 3
    assert spec["runPolicy"]["suspend"] is True  # Kueue admits it by unsuspending
    assert obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    pod = spec["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    container = pod["containers"][0]
    # one pod runs a node's two workers: it asks for both, as Kubernetes quantities
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "32Gi"}
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert TrainConfig.from_json(container["command"][-1]) == CONFIG


def test_trainjob_object_is_valid(kube: FakeKube) -> None:
    obj = TrainJobBackend(api_client=kube.api_client()).build(_job())

    assert schema_errors(obj, "trainer.kubeflow.org_trainjobs.yaml") == []
    trainer = obj["spec"]["trainer"]
    assert trainer["numNodes"] == 2
    assert trainer["numProcPerNode"] == 2
    assert obj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}


def _operator(kube: FakeKube, plural: str, api: str, pod_labels: dict[str, str], outcome: str, message: str) -> None:
    """Wait for the job object, then move it to Running (with a pod) and on to `outcome`."""
    import time

    deadline = time.monotonic() + 10
    while kube.get(api, "default", plural, "churn-train") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    kube.add_pod("default", "churn-train-master-0", pod_labels, "epoch 1 loss 0.5\nepoch 2 loss 0.3\n")
    running = {"conditions": [{"type": "Running", "status": "True"}]} if plural == "pytorchjobs" else {}
    kube.set_status(api, "default", plural, "churn-train", running)
    time.sleep(0.3)
    final = {
        "conditions": [{"type": "Running", "status": "False"}, {"type": outcome, "status": "True", "message": message}]
    }
    kube.set_status(api, "default", plural, "churn-train", final)


@pytest.mark.parametrize(
    ("backend_class", "api", "plural", "labels", "done"),
    [
        (
            PyTorchJobBackend,
            "kubeflow.org/v1",
            "pytorchjobs",
            {"training.kubeflow.org/job-name": "churn-train", "training.kubeflow.org/replica-type": "master"},
            "Succeeded",
        ),
        (
            TrainJobBackend,
            "trainer.kubeflow.org/v1alpha1",
            "trainjobs",
            {"jobset.sigs.k8s.io/jobset-name": "churn-train", "batch.kubernetes.io/job-completion-index": "0"},
            "Complete",
        ),
    ],
)
def test_job_runs_streams_logs_and_a_rerun_reattaches(
    kube: FakeKube, tmp_path: Any, backend_class: Any, api: str, plural: str, labels: dict[str, str], done: str
) -> None:
    backend = backend_class(api_client=kube.api_client())
    operator = threading.Thread(target=_operator, args=(kube, plural, api, labels, done, "done"))
    operator.start()
    handle_file = tmp_path / "handle.json"
    out = io.StringIO()
    handle = submit_or_attach(backend, _job(), handle_file)
    status = follow(backend, handle, poll_s=0.05, out=out)
    operator.join()

    assert status.state is JobState.SUCCEEDED
    assert "epoch 2 loss 0.3" in out.getvalue()
    assert json.loads(handle_file.read_text())["name"] == "churn-train"
    # The launcher is re-run (a retried pipeline pod): it re-attaches, creating nothing new.
    creates_before = [r for r in kube.requests if r[0] == "POST"]
    run_job(backend, _job(), handle_path=handle_file, poll_s=0.05)
    assert [r for r in kube.requests if r[0] == "POST"] == creates_before
    # Even without the recorded handle, the same job name attaches instead of duplicating.
    assert backend.submit(_job()).name == "churn-train"
    assert len(kube.objects[(api, "default", plural)]) == 1


@pytest.mark.parametrize(
    ("backend_class", "api", "plural", "labels", "done"),
    [
        (PyTorchJobBackend, "kubeflow.org/v1", "pytorchjobs", {}, "Succeeded"),
        (TrainJobBackend, "trainer.kubeflow.org/v1alpha1", "trainjobs", {}, "Complete"),
    ],
)
def test_second_attempt_follows_the_first_job_without_creating(
    kube: FakeKube, tmp_path: Any, backend_class: Any, api: str, plural: str, labels: dict[str, str], done: str
) -> None:
    backend = backend_class(api_client=kube.api_client())
    handle_file = str(tmp_path / "handle.json")
    first = submit_or_attach(backend, _job(), handle_file)  # the first attempt created, recorded, then died
    operator = threading.Thread(target=_operator, args=(kube, plural, api, labels, done, "done"))
    operator.start()

    status = run_job(backend, _job(), handle_path=handle_file, poll_s=0.05)
    operator.join()

    assert status.state is JobState.SUCCEEDED
    assert len([r for r in kube.requests if r[0] == "POST"]) == 1
    assert json.loads((tmp_path / "handle.json").read_text()) == json.loads(first.to_json())


def test_recorded_job_that_is_gone_is_created_again(kube: FakeKube, tmp_path: Any) -> None:
    """Deleted (a TTL, a person): the retry creates it again, and the job resumes from its checkpoint."""
    backend = PyTorchJobBackend(api_client=kube.api_client())
    handle_file = str(tmp_path / "handle.json")
    backend.cancel(submit_or_attach(backend, _job(), handle_file))

    assert submit_or_attach(backend, _job(), handle_file).name == "churn-train"
    assert len([r for r in kube.requests if r[0] == "POST"]) == 2
    assert kube.get("kubeflow.org/v1", "default", "pytorchjobs", "churn-train") is not None


def test_suspend_patches_the_job(kube: FakeKube) -> None:
    backend = PyTorchJobBackend(api_client=kube.api_client())
    backend.suspend(backend.submit(_job(options={})))
    job = kube.get("kubeflow.org/v1", "default", "pytorchjobs", "churn-train")
    assert job is not None and job["spec"]["runPolicy"]["suspend"] is True


def test_failed_job_reports_its_own_reason(kube: FakeKube) -> None:
    backend = PyTorchJobBackend(api_client=kube.api_client())
    labels = {"training.kubeflow.org/job-name": "churn-train", "training.kubeflow.org/replica-type": "master"}
    reason = "PyTorchJob churn-train is failed because 1 Master replica(s) failed: OOMKilled"
    operator = threading.Thread(
        target=_operator, args=(kube, "pytorchjobs", "kubeflow.org/v1", labels, "Failed", reason)
    )
    operator.start()
    with pytest.raises(TrainingError, match="OOMKilled"):
        run_job(backend, _job(), poll_s=0.05)
    operator.join()
    backend.cancel(backend.submit(_job()))
    assert kube.get("kubeflow.org/v1", "default", "pytorchjobs", "churn-train") is None


@pytest.fixture
def vertex() -> Iterator[tuple[VertexBackend, FakeVertex]]:
    from google.auth.credentials import AnonymousCredentials

    with running_fake_vertex() as fake:
        backend = VertexBackend(
            project="proj",
            location="us-central1",
            staging_bucket="gs://kubeforge-staging",
            api_endpoint=fake.url,
            api_transport="rest",
            credentials=AnonymousCredentials(),
        )
        yield backend, fake


def test_vertex_customjob_pools_state_and_reattach(vertex: tuple[VertexBackend, FakeVertex]) -> None:
    backend, fake = vertex
    handle = backend.submit(_job())

    [created] = fake.custom_job_creates
    pools = created["jobSpec"]["workerPoolSpecs"]
    assert [pool["replicaCount"] for pool in pools] == ["1", "1"]
    # a node of two workers (4 cores, 16 GiB, 1 gpu each): the smallest n1-standard machine that holds it
    machine = {"machineType": "n1-standard-16", "acceleratorType": 5, "acceleratorCount": 2}  # 5: NVIDIA_TESLA_T4
    assert pools[0]["machineSpec"] == machine
    container = pools[0]["containerSpec"]
    assert container["args"][:2] == ["-m", "kubeforge.launch.node"]
    assert TrainConfig.from_json(container["args"][-1]) == CONFIG
    assert created["labels"] == {"kubeforge-job": "churn-train"}
    assert backend.status(handle).state is JobState.PENDING
    # A re-run finds the live job by its label instead of creating a second one.
    assert backend.submit(_job()).id == handle.id
    assert len(fake.custom_job_creates) == 1
    fake.custom_jobs[handle.id].update(state=5, error={"code": 3, "message": "replica workerpool0-0 exited with 1"})
    with pytest.raises(TrainingError, match="exited with 1"):
        follow(backend, handle, poll_s=0.01, out=io.StringIO())


def test_vertex_second_attempt_follows_the_first_job(vertex: tuple[VertexBackend, FakeVertex], tmp_path: Any) -> None:
    backend, fake = vertex
    handle_file = str(tmp_path / "handle.json")
    first = submit_or_attach(backend, _job(), handle_file)  # the first attempt created, recorded, then died
    fake.custom_jobs[first.id].update(state=3)  # running
    finished = threading.Timer(0.3, lambda: fake.custom_jobs[first.id].update(state=4))
    finished.start()

    status = run_job(backend, _job(), handle_path=handle_file, poll_s=0.05)
    finished.join()

    assert status.state is JobState.SUCCEEDED
    assert len(fake.custom_job_creates) == 1


def test_vertex_cluster_spec_becomes_torchrun_rendezvous() -> None:
    spec = {
        "cluster": {"workerpool0": ["cmle-training-workerpool0-0:2222"], "workerpool1": ["w1-0:2222", "w1-1:2222"]},
        "task": {"type": "workerpool1", "index": 1},
    }
    flags = rendezvous_flags({"CLUSTER_SPEC": json.dumps(spec)})
    assert flags == ["--nnodes=3", "--node-rank=2", "--master-addr=cmle-training-workerpool0-0", "--master-port=2222"]
    assert rendezvous_flags({}) == []
    with pytest.raises(InputError, match="CLUSTER_SPEC"):
        rendezvous_flags({"CLUSTER_SPEC": '{"cluster": {}}'})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Bad_Name"}, "job name 'Bad_Name'"),
        ({"nodes": 0}, "nodes"),
        ({"max_restarts": -1}, "max_restarts"),
    ],
)
def test_bad_job_descriptions_name_the_parameter(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _job(**overrides)


@pytest.mark.parametrize(("cpu", "cores"), [("2", 2), ("0.5", 1), ("500m", 1), ("2500m", 3), ("0", 1)])
def test_cpu_quantities_become_whole_cores_for_slurm(cpu: str, cores: int) -> None:
    assert Resources(cpu_m=parse_cpu(cpu, "cpu")).whole_cpus() == cores


@pytest.mark.parametrize(
    ("cpu", "memory", "quantities"),
    [("1", "2Gi", ("1", "2Gi")), ("500m", "512Mi", ("500m", "512Mi")), ("2.5", "1536Mi", ("2500m", "1536Mi"))],
)
def test_kubernetes_quantities_read_back_as_written(cpu: str, memory: str, quantities: tuple[str, str]) -> None:
    amount = Resources(parse_cpu(cpu, "cpu"), parse_memory(memory, "memory"))
    assert (amount.cpu_quantity, amount.memory_quantity) == quantities


def test_a_node_too_large_for_any_n1_machine_asks_for_a_machine_type() -> None:
    assert machine_type(Resources(1000, 2048)) == "n1-standard-1"
    with pytest.raises(InputError, match=r"backend_options\.machine_type"):
        machine_type(Resources(cpu_m=97_000, memory_mb=1024))
