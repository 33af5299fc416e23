"""The REST API through the Python client over real HTTP: auth, team isolation, and a fuzz that never gets 5xx;
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scheduler_server import serving

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import Reason
from kubeforge.scheduler.store import open_store
from kubeforge.scheduler_client import SchedulerClient, SchedulerError

ADMIN = "admin-token-0123456789"


@pytest.fixture(scope="module")
def api(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dispatcher]]:
    root = tmp_path_factory.mktemp("api")
    store = open_store(module_store_url)
    store.add_token(ADMIN, "admin", admin=True)
    dispatcher = Dispatcher(store, LocalBackend(root / "launches", capacity=Resources(1000, 2048)), grace_s=3)
    dispatcher.start()
    with serving(SchedulerAPI(store, dispatcher, logs=dispatcher.backend.log_range)) as url:
        with SchedulerClient(url, ADMIN) as admin:
            admin.put_queue("gpu", {"cpu": 1, "memory": "2Gi"})
        yield url, dispatcher
    store.close()


def test_teams_see_and_cancel_only_their_own_jobs(api: tuple[str, Dispatcher]) -> None:
    url, dispatcher = api
    with SchedulerClient(url, ADMIN) as admin:
        alice, bob = _team_clients(url, admin, "alice", "bob")
        with alice, bob:
            _isolation(url, dispatcher, admin, alice, bob)


def _team_clients(url: str, admin: SchedulerClient, *teams: str) -> list[SchedulerClient]:
    """One client per team, each with a new token bound to that team."""
    return [SchedulerClient(url, admin.create_token(team)) for team in teams]


def _isolation(
    url: str, dispatcher: Dispatcher, admin: SchedulerClient, alice: SchedulerClient, bob: SchedulerClient
) -> None:
    blocker = alice.submit({"queue": "gpu", "command": ["sleep", "30"], "resources": {"cpu": 1}})
    waiting = bob.submit({"queue": "gpu", "command": ["echo", "hi"], "resources": {"cpu": 1}, "max_runtime_s": 5})
    dispatcher.step()
    assert {job["id"] for job in alice.jobs()} == {blocker}
    assert {job["id"] for job in admin.jobs()} >= {blocker, waiting}
    with pytest.raises(SchedulerError, match="404"):
        bob.job(blocker)
    with pytest.raises(SchedulerError, match="404"):
        bob.cancel(blocker)
    with pytest.raises(SchedulerError, match="403"):
        bob.put_queue("mine", {"cpu": 64})
    with pytest.raises(SchedulerError, match="401"), SchedulerClient(url, "not-a-token-at-all") as stranger:
        stranger.jobs()
    shown = bob.job(waiting)
    assert shown["state"] == "pending" and shown["position"] == 1
    assert shown["reason"] in (Reason.QUOTA.value, Reason.CAPACITY.value)  # the dispatcher's live reason
    assert shown["estimated_start"] >= time.time() + 25  # after the blocker's maximum runtime (3600 s default)
    alice.cancel(blocker)
    deadline = time.monotonic() + 20
    while bob.job(waiting)["state"] != "succeeded" and time.monotonic() < deadline:
        dispatcher.step()
        time.sleep(0.05)
    assert alice.job(blocker)["state"] == "cancelled"
    assert bob.logs(waiting) == "hi\n"


def test_arrays_are_one_request_and_stay_within_their_team(api: tuple[str, Dispatcher]) -> None:
    url, dispatcher = api
    with SchedulerClient(url, ADMIN) as admin:
        alice, bob = _team_clients(url, admin, "alice-arrays", "bob-arrays")
    with alice, bob:
        spec = {"queue": "gpu", "command": ["sleep", "30"], "resources": {"cpu": 1}}
        ids = alice.submit_array(spec, "0-8:4")
        assert ids == sorted(ids) and len(ids) == 3
        tasks = alice.array(ids[0])
        assert [(task["id"], task["array_id"], task["array_index"]) for task in tasks] == [
            (ids[0], ids[0], 0),
            (ids[1], ids[0], 4),
            (ids[2], ids[0], 8),
        ]
        assert {job["id"]: job["array_index"] for job in alice.jobs() if job["array_id"] == ids[0]} == {
            ids[0]: 0,
            ids[1]: 4,
            ids[2]: 8,
        }
        assert alice.job(ids[1])["array_id"] == ids[0]
        for refused in (lambda: bob.array(ids[0]), lambda: bob.cancel_array(ids[0])):
            with pytest.raises(SchedulerError, match="404"):
                refused()
        with pytest.raises(SchedulerError, match="404: array"):
            alice.array(ids[1])  # a task that is not the first names no array
        dispatcher.step()
        assert alice.cancel_array(ids[0]) == ids
        deadline = time.monotonic() + 20
        while {task["state"] for task in alice.array(ids[0])} != {"cancelled"}:
            assert time.monotonic() < deadline, alice.array(ids[0])
            dispatcher.step()
            time.sleep(0.05)
        with pytest.raises(SchedulerError, match="409: array"):
            alice.cancel_array(ids[0])


@pytest.mark.parametrize(
    ("array", "message"),
    [
        ("5-1", "array: '5-1' must run upwards"),
        ("0-20000", "array: give 1 to 10000 task indices"),
        ("1,x", "array: 'x' is not an index or range"),
        ([], "array: give 1 to 10000 task indices"),
        ({"from": 1}, "array: expected a range"),
    ],
)
def test_bad_array_submissions_are_refused_with_the_field(
    api: tuple[str, Dispatcher], array: object, message: str
) -> None:
    with SchedulerClient(api[0], ADMIN) as client, pytest.raises(SchedulerError, match=f"400: {message}"):
        client.submit_array({"queue": "gpu", "command": ["true"]}, array)  # type: ignore[arg-type]


def test_openapi_document_lists_every_route(api: tuple[str, Dispatcher]) -> None:
    with requests.get(f"{api[0]}/openapi.json", timeout=5) as response:
        document = response.json()
    assert document["openapi"].startswith("3.")
    routes = {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/logs", "/v1/arrays", "/v1/arrays/{array_id}"}
    assert routes | {"/v1/queues/{name}", "/v1/tokens", "/v1/tokens/{token_id}", "/healthz", "/readyz"} <= set(
        document["paths"]
    )


def test_submission_beyond_the_queue_is_refused_with_the_field(api: tuple[str, Dispatcher]) -> None:
    with SchedulerClient(api[0], ADMIN) as client:
        with pytest.raises(SchedulerError, match="resources: 4 worker"):
            client.submit({"queue": "gpu", "command": ["true"], "workers": 4, "resources": {"cpu": 1}})
        with pytest.raises(SchedulerError, match="queue: 'nope' does not exist"):
            client.submit({"queue": "nope", "command": ["true"]})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_spec_fields = st.sampled_from(
    [
        "queue",
        "command",
        "training",
        "resources",
        "workers",
        "priority",
        "max_runtime_s",
        "retries",
        "depends_on",
        "env",
        "array",
        "job",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(
        [
            "/v1/jobs",
            "/v1/jobs/1",
            "/v1/jobs/99999999999",
            "/v1/arrays",
            "/v1/arrays/1",
            "/v1/queues/x",
            "/v1/tokens",
            "/v1/x",
        ]
    ),
    body=st.one_of(st.dictionaries(_spec_fields, _json_values, max_size=6), _json_values, st.binary(max_size=40)),
    token=st.sampled_from([ADMIN, "", "wrong-token-wrong-token"]),
)
def test_fuzzed_requests_get_4xx_never_5xx(
    api: tuple[str, Dispatcher], method: str, path: str, body: object, token: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with requests.request(method, f"{api[0]}{path}", data=data, headers=headers, timeout=10) as response:
        status, text = response.status_code, response.text
    assert status < 500, text
    if status >= 400:
        assert "error" in json.loads(text)
