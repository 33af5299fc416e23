"""The Helm chart's pods, run from the image: `make test-deploy`.

`helm template` renders the chart with the scheduler on the PostgreSQL store (the URL from the chart's
Secret) and the model server on a Model artifact in S3; `podman kube play` runs the rendered Deployments
from the image built by the container lane (host network: the pods listen on loopback).
PostgreSQL and moto's S3 run beside them on loopback. Checked over HTTP: the scheduler API answers a team
token (and refuses a wrong one), a job submitted through it runs in the dispatcher's pod, and the model
server answers Open Inference Protocol v2 infer on the model from S3 with exactly the predictions
`kubeforge serve` gives on the same model here. `podman inspect` shows each container runs as the chart's
non-root UID with the security context the chart declares. Everything started is stopped.

The rendered manifests are run as rendered, with these substitutions for a machine without a cluster:
the scheduler's `kubernetes` backend becomes `local` (a job runs in the dispatcher's pod); the pods use
the host's network (`hostNetwork`, so they reach PostgreSQL and moto on loopback), where podman cannot
map container ports, so the `ports` lists go and the probes name their port by number; servers bind
127.0.0.1 instead of 0.0.0.0.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_rbac import render_chart
from moto_server import running_moto_server
from postgres_server import PostgresServer, postgres_available, running_postgres

import kubeforge

pytestmark = [pytest.mark.containers, pytest.mark.deploy]
PLAYED_KINDS = {"Deployment", "ConfigMap"}
BUCKET = "kubeforge-models"
ADMIN_TOKEN = "deploy-admin-token"
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(url: str, body: Any = None, token: str = "", timeout: float = 10) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait_for(url: str, what: str, deadline_s: float, logs: Any) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if _http(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url} in {deadline_s:.0f} s; pod logs:\n{logs()}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps`")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def model_uri(moto: str, trained_model: Path) -> Iterator[str]:
    """The trained Model artifact, uploaded to moto's S3 as a pipeline would leave it."""
    import boto3

    from kubeforge.artifacts import upload_dir

    credentials = {"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**credentials, "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(key, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        upload_dir(trained_model, f"s3://{BUCKET}/cancer/v1")
        yield f"s3://{BUCKET}/cancer/v1"


def _manifests(ports: dict[str, int], model_uri: str, moto: str) -> str:
    """The chart rendered for this run, reduced to the kinds podman plays."""
    model_env = [
        {"name": "AWS_ENDPOINT_URL", "value": moto},
        {"name": "AWS_ACCESS_KEY_ID", "value": "test"},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "test"},
        {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
    ]
    values = [
        "scheduler.replicas=1",
        f"scheduler.port={ports['scheduler']}",
        "modelServer.enabled=true",
        f"modelServer.port={ports['model']}",
        f"modelServer.grpcPort={ports['grpc']}",  # host network: gRPC on a free loopback port too
        f"modelServer.modelUri={model_uri}",
        "modelServer.modelName=cancer",
        *(f"modelServer.env[{i}].{key}={item[key]}" for i, item in enumerate(model_env) for key in ("name", "value")),
    ]
    documents = [doc for doc in render_chart("kubeforge", *values) if doc["kind"] in PLAYED_KINDS]
    for deployment in documents:
        pod = deployment["spec"]["template"]["spec"]
        pod["hostNetwork"] = True
        for container in pod["containers"]:
            container["args"] = [
                arg.replace("--backend=kubernetes", "--backend=local").replace("--host=0.0.0.0", "--host=127.0.0.1")
                for arg in container["args"]
            ]
            ports = {port["name"]: port["containerPort"] for port in container.pop("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    http = container[probe]["httpGet"]
                    http["port"] = ports.get(http["port"], http["port"])
    return yaml.safe_dump_all(documents, sort_keys=False)


def _take_down(podman: str, manifest: Path) -> None:
    """`podman kube down`, then remove by name any of the manifest's pods a failed play left behind."""
    subprocess.run([podman, "kube", "down", str(manifest)], capture_output=True)
    pods = [f"{doc['metadata']['name']}-pod-0" for doc in yaml.safe_load_all(manifest.read_text())]
    subprocess.run([podman, "pod", "rm", "--force", "--ignore", *pods], capture_output=True)


def _store_secret(podman: str, postgres_url: str) -> None:
    """The Secret the chart reads the store URL from (`kubeforge-postgres`, key `url`), as a podman secret.

    podman 4.3 keeps a Secret played from YAML as YAML but reads `secretKeyRef` as JSON (key to base64
    value), so the Secret is created in that form instead of being played.
    """
    subprocess.run([podman, "secret", "rm", "kubeforge-postgres"], capture_output=True)
    content = json.dumps({"url": base64.b64encode(postgres_url.encode()).decode()})
    subprocess.run([podman, "secret", "create", "kubeforge-postgres", "-"], input=content, text=True, check=True)


@pytest.fixture(scope="module")
def played(
    image: str, postgres: PostgresServer, moto: str, model_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The chart's pods running under podman; removed with `podman kube down` afterwards."""
    assert image == kubeforge.IMAGE, "the chart runs the image tagged with the package version"
    podman = shutil.which("podman")
    assert podman, "podman is missing: run `make test-deploy`, which installs it"
    postgres_url = postgres.create_database()
    from kubeforge.scheduler.store import open_store

    store = open_store(postgres_url)  # the operator's bootstrap: an admin token in the shared store
    store.add_token(ADMIN_TOKEN, "admin", admin=True)
    store.close()
    ports = {"scheduler": _free_port(), "model": _free_port(), "grpc": _free_port()}
    manifest = tmp_path_factory.mktemp("deploy") / "kubeforge.yaml"
    manifest.write_text(_manifests(ports, model_uri, moto))
    _take_down(podman, manifest)  # what a killed run left behind
    _store_secret(podman, postgres_url)
    played = subprocess.run([podman, "kube", "play", str(manifest)], capture_output=True, text=True)
    assert played.returncode == 0, f"podman kube play failed: {played.stderr}"

    def logs() -> str:
        names = subprocess.run(
            [podman, "ps", "-a", "--filter", "name=kubeforge-", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        texts = [
            f"--- {name}\n"
            + subprocess.run([podman, "logs", "--tail", "30", name], capture_output=True, text=True).stderr
            for name in names
            if not name.endswith("-infra")
        ]
        return "\n".join(texts)

    try:
        _wait_for(f"http://127.0.0.1:{ports['scheduler']}/healthz", "the scheduler API", 120, logs)
        _wait_for(f"http://127.0.0.1:{ports['model']}/v2/health/ready", "the model server", 300, logs)
        yield {"ports": ports, "manifest": manifest, "podman": podman, "logs": logs}
    finally:
        _take_down(podman, manifest)
        subprocess.run([podman, "secret", "rm", "kubeforge-postgres"], capture_output=True)


def test_scheduler_api_answers_a_team_token_and_a_submitted_job_runs(played: dict[str, Any]) -> None:
    from kubeforge.scheduler_client import SchedulerClient, SchedulerError

    api = f"http://127.0.0.1:{played['ports']['scheduler']}"
    with SchedulerClient(api, ADMIN_TOKEN) as admin:
        admin.put_queue("default", {"cpu": 1, "memory": "1Gi"})
        team_token = admin.create_token("team-a")
    with SchedulerClient(api, "not-a-token") as stranger, pytest.raises(SchedulerError, match="401"):
        stranger.jobs()
    with SchedulerClient(api, team_token) as team:
        assert team.jobs() == []
        resources = {"cpu": 0.1, "memory": "64Mi"}
        ok = team.submit(
            {
                "queue": "default",
                "command": ["python3", "-c", "import os; assert os.getuid() == 10001"],
                "resources": resources,
            }
        )
        failing = team.submit(
            {"queue": "default", "command": ["python3", "-c", "raise SystemExit(3)"], "resources": resources}
        )
        deadline = time.monotonic() + 120
        while {team.job(job_id)["state"] for job_id in (ok, failing)} - {"succeeded", "failed"}:
            assert time.monotonic() < deadline, f"jobs still running; pod logs:\n{played['logs']()}"
            time.sleep(0.5)
        # Run by the dispatcher's pod, as the image's user: the one passes, the other exits 3.
        assert (team.job(ok)["state"], team.job(ok)["exit_code"]) == ("succeeded", 0)
        assert (team.job(failing)["state"], team.job(failing)["exit_code"]) == ("failed", 3)


def test_model_server_infers_on_the_model_from_s3_like_kubeforge_serve(
    played: dict[str, Any], trained_model: Path, prepared: Any
) -> None:
    import pandas as pd

    frame = pd.read_parquet(prepared.test).drop(columns=["target"]).head(8)
    inputs = [
        {"name": name, "shape": [len(frame)], "datatype": "FP64", "data": frame[name].astype(float).tolist()}
        for name in frame.columns
    ]
    request = {"inputs": inputs}
    status, in_pod = _http(f"http://127.0.0.1:{played['ports']['model']}/v2/models/cancer/infer", request)
    assert status == 200, in_pod

    port = _free_port()
    kubeforge_cli = str(Path(sys.executable).parent / "kubeforge")
    command = [kubeforge_cli, "serve", str(trained_model), "--name", "cancer", "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as local:
        try:
            _wait_for(f"http://127.0.0.1:{port}/v2/health/ready", "kubeforge serve", 120, lambda: "")
            status, here = _http(f"http://127.0.0.1:{port}/v2/models/cancer/infer", request)
        finally:
            local.terminate()
            local.wait(timeout=30)
    assert status == 200
    assert in_pod["outputs"] == here["outputs"]
    assert in_pod["model_name"] == "cancer"

    # the same rows over the pod's gRPC port, with the reference client and raw tensor contents
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(f"127.0.0.1:{played['ports']['grpc']}") as grpc:
        assert grpc.is_server_ready() and grpc.is_model_ready("cancer")
        tensors = []
        for name in frame.columns:
            tensors.append(grpcclient.InferInput(name, [len(frame)], "FP64"))
            tensors[-1].set_data_from_numpy(frame[name].to_numpy(dtype="float64"))
        result = grpc.infer("cancer", tensors)
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predictions")]
    [predictions] = [output["data"] for output in in_pod["outputs"] if output["name"] == "predictions"]
    assert labels == predictions


@pytest.mark.parametrize("component", ["scheduler", "dispatcher", "model-server"])
def test_pods_run_as_the_charts_non_root_uid_with_its_security_context(played: dict[str, Any], component: str) -> None:
    podman = played["podman"]
    names = subprocess.run(
        [podman, "ps", "--filter", f"name=kubeforge-{component}-pod", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    [name] = [n for n in names if not n.endswith("-infra")]
    [inspected] = json.loads(
        subprocess.run([podman, "inspect", name], capture_output=True, text=True, check=True).stdout
    )
    assert inspected["Config"]["User"] == "10001:10001"
    host = inspected["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["CapDrop"]) >= {"CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SYS_CHROOT"} and not host["CapAdd"]
    assert "no-new-privileges" in " ".join(host["SecurityOpt"])
    ids = subprocess.run(
        [podman, "exec", name, "python3", "-c", "import os; print(os.getuid(), os.getgid(), os.getgroups())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(maxsplit=2)
    assert ids[:2] == [str(POD_SECURITY["runAsUser"]), str(POD_SECURITY["runAsGroup"])]
    probe = "import pathlib; pathlib.Path('/opt/kubeforge/x').write_text('x')"
    refused = subprocess.run([podman, "exec", name, "python3", "-c", probe], capture_output=True, text=True)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert os.environ.get("KUBEFORGE_CONTAINER_IMAGE") == kubeforge.IMAGE
