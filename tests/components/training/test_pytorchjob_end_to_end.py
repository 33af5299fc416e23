"""The training component on the `pytorchjob` backend, end to end.

No Kubernetes cluster can run here. A loopback HTTP server speaks the Kubernetes REST paths
(the real `kubernetes` client, configured from a real kubeconfig file, talks to it), and a
small stand-in for the training operator runs the PyTorchJob's own container command as a
local process with the PET_* rendezvous variables the real operator sets. Artifacts and the
staged model live on moto's S3 server (the real S3 REST API on loopback).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from fake_kube import FakeKube, running_fake_kube

from kubeforge.artifacts import read_text, write_bytes
from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, train_model
from kubeforge.model_format import load_model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _operator(kube: FakeKube, stop: threading.Event) -> None:
    """Run each new PyTorchJob's master container locally; report its outcome in the status."""
    while not stop.is_set():
        jobs = kube.objects.get(("kubeflow.org/v1", "ml", "pytorchjobs"), {})
        for name, job in list(jobs.items()):
            if job.get("status"):
                continue
            kube.set_status(
                "kubeflow.org/v1", "ml", "pytorchjobs", name, {"conditions": [{"type": "Running", "status": "True"}]}
            )
            master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
            command = [sys.executable, *master["command"][1:]]
            env = {
                **os.environ,
                "PET_NNODES": "1",
                "PET_NODE_RANK": "0",
                "PET_MASTER_ADDR": "127.0.0.1",
                "PET_MASTER_PORT": str(_free_port()),
                "OMP_NUM_THREADS": "1",
            }
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            labels = {"training.kubeflow.org/job-name": name, "training.kubeflow.org/replica-type": "master"}
            kube.add_pod("ml", f"{name}-master-0", labels, result.stdout + result.stderr)
            outcome = "Succeeded" if result.returncode == 0 else "Failed"
            kube.set_status(
                "kubeflow.org/v1",
                "ml",
                "pytorchjobs",
                name,
                {"conditions": [{"type": outcome, "status": "True", "message": f"exit {result.returncode}"}]},
            )
        time.sleep(0.1)


def test_pytorchjob_backend_trains_from_s3(prepared: Any, s3_bucket: str, tmp_path: Path, monkeypatch: Any) -> None:
    for name in ("train", "validation", "preprocessor"):
        write_bytes(f"s3://{s3_bucket}/data/{name}", getattr(prepared, name).read_bytes())
    inputs = TrainInputs(*(f"s3://{s3_bucket}/data/{n}" for n in ("train", "validation", "preprocessor")))
    with running_fake_kube() as kube:
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
            "users": [{"name": "dev", "user": {"token": "t"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "dev", "namespace": "ml"}}],
            "current-context": "fake",
        }
        (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
        stop = threading.Event()
        operator = threading.Thread(target=_operator, args=(kube, stop), daemon=True)
        operator.start()
        try:
            params = TrainParams(
                backend="pytorchjob", workers=2, nproc_per_node=2, epochs=3, backend_options='{"namespace": "ml"}'
            )
            staging = f"s3://{s3_bucket}/runs/r1/model-staging"
            result = train_model(
                inputs, str(tmp_path / "model"), params, handle_path=str(tmp_path / "handle.json"), staging_uri=staging
            )
            # A retried task (same outputs) finds the handle beside them: it follows that job, creating none.
            again = train_model(inputs, str(tmp_path / "model"), params, staging_uri=staging)
        finally:
            stop.set()
            operator.join()
        [created] = kube.objects[("kubeflow.org/v1", "ml", "pytorchjobs")].values()

    assert created["spec"]["nprocPerNode"] == "2"
    assert result.summary["world_size"] == 2
    assert len(set(result.summary["replica_checksums"])) == 1
    model = load_model(tmp_path / "model")
    test = pd.read_parquet(prepared.test)
    accuracy = (pd.Series(model.predict_frame(test).labels) == test["target"].to_numpy()).mean()
    assert accuracy > 0.85
    assert '"backend": "pytorchjob"' in (tmp_path / "handle.json").read_text()
    assert read_text(f"{staging}/handle.json") == (tmp_path / "handle.json").read_text()
    assert len([request for request in kube.requests if request[0] == "POST"]) == 1
    assert again.summary["replica_checksums"] == result.summary["replica_checksums"]
