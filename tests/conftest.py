"""Shared fixtures: real datasets written to disk, and the preprocessing outputs made from them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lanes import mark_slow_tests
from prepared_data import PreparedData, train_model
from slurm_cluster import SlurmCluster, running_slurm, slurm_available

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.demo import write_breast_cancer_csv

S3_BUCKET = "kubeforge-test"
GCS_BUCKET = "kubeforge-test"


@pytest.fixture(scope="session")
def breast_cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's breast cancer data (569 rows, 30 numeric features, label `target`) as CSV."""
    return write_breast_cancer_csv(tmp_path_factory.mktemp("data") / "breast_cancer.csv")


@pytest.fixture(scope="session")
def prepared(breast_cancer_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    """The breast cancer data run through the preprocess core once per session."""
    out = tmp_path_factory.mktemp("prepared")
    outputs = PreprocessOutputs(
        train=str(out / "train.parquet"),
        validation=str(out / "validation.parquet"),
        test=str(out / "test.parquet"),
        preprocessor=str(out / "preprocessor.json"),
        statistics=str(out / "statistics.md"),
    )
    preprocess(breast_cancer_csv, outputs, label="target")
    return PreparedData(
        csv=breast_cancer_csv,
        train=Path(outputs.train),
        validation=Path(outputs.validation),
        test=Path(outputs.test),
        preprocessor=Path(outputs.preprocessor),
        statistics=Path(outputs.statistics),
    )


@pytest.fixture(scope="session")
def trained_model(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained by the engine on the prepared data (one worker, a few epochs)."""
    return train_model(prepared, tmp_path_factory.mktemp("trained"), epochs=8, learning_rate=0.01)


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A real one-node SLURM cluster on loopback; SLURM_CONF points the clients at it."""
    if not slurm_available():
        pytest.fail("SLURM is not installed: run `make system-deps` (installs slurm-wlm and munge)")
    with running_slurm() as cluster:
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    """A bucket on moto's S3 server (real S3 REST API on 127.0.0.1); the AWS env points boto3 at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
            env.setenv("AWS_ACCESS_KEY_ID", "test")
            env.setenv("AWS_SECRET_ACCESS_KEY", "test")
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
                env.delenv(name, raising=False)
            boto3.session.Session().client("s3").create_bucket(Bucket=S3_BUCKET)
            yield S3_BUCKET
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcs_bucket() -> Iterator[str]:
    """A bucket on gcp-storage-emulator (GCS JSON API on 127.0.0.1); STORAGE_EMULATOR_HOST points at it."""
    from gcp_storage_emulator.server import create_server
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        port = server._api._httpd.server_port  # port 0: the OS picked a free port
        with pytest.MonkeyPatch.context() as env:
            env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
            env.setenv("GOOGLE_CLOUD_PROJECT", "kubeforge-test")
            storage.Client(project="kubeforge-test", credentials=AnonymousCredentials()).create_bucket(GCS_BUCKET)
            yield GCS_BUCKET
    finally:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests (the rules: tests/support/lanes.py); `make test-fast` leaves them out."""
    mark_slow_tests(items, config.rootpath)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Torch in this process (in-process training in tests) runs one intra-op thread: on a machine whose
    cores are shared, its threads contend with every other process and a tiny model's step takes 4x longer.
    Workers that tests start are separate processes and keep their own settings."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
