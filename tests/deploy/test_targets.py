"""kubeforge.deploy's dispatch: one map of targets, each reached through `deploy()` after the request is checked."""

from __future__ import annotations

import pytest

from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.deploy.options import TARGET_OPTIONS, RemoteOptions
from kubeforge.deploy.targets import TARGETS, deploy
from kubeforge.errors import InputError


def test_every_target_declares_its_options() -> None:
    assert list(TARGETS) == ["local", "kserve", "vertex", "sagemaker"]
    assert set(TARGETS) == set(TARGET_OPTIONS)


def test_a_checked_request_reaches_its_target_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[DeployRequest] = []

    def recording_target(request: DeployRequest) -> DeployResult:
        received.append(request)
        return DeployResult(endpoint="http://svc", target="kserve", status="created", model_name=request.model_name)

    monkeypatch.setitem(TARGETS, "kserve", recording_target)
    request = DeployRequest("s3://models/a", "cancer", remote=RemoteOptions(target_options={"namespace": "ml"}))
    assert deploy("kserve", request).status == "created"
    assert received == [request]
    assert request.storage_uri == "s3://models/a"
    assert DeployRequest("s3://a", "m", remote=RemoteOptions(storage_uri="s3://b")).storage_uri == "s3://b"


@pytest.mark.parametrize(
    ("target", "request_", "message"),
    [
        ("heroku", DeployRequest("/m", "cancer"), "'heroku' is not a deploy target; valid targets are local, kserve"),
        ("kserve", DeployRequest("/m", "Bad Name!"), "model_name: .Bad Name!. is not a valid model name"),
        (
            "kserve",
            DeployRequest("/m", "cancer", remote=RemoteOptions(target_options={"role_arn": "x"})),
            "role_arn not known to the kserve target; it accepts namespace, service_account",
        ),
        ("vertex", DeployRequest("gs://m", "cancer"), "the vertex target needs project, location"),
    ],
)
def test_bad_requests_are_refused_before_any_target_runs(
    monkeypatch: pytest.MonkeyPatch, target: str, request_: DeployRequest, message: str
) -> None:
    def must_not_run(request: DeployRequest) -> DeployResult:
        raise AssertionError(f"target called with {request}")

    for name in TARGETS:
        monkeypatch.setitem(TARGETS, name, must_not_run)
    with pytest.raises(InputError, match=message):
        deploy(target, request_)
