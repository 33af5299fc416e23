"""The API as a careless or hostile team meets it, over real HTTP with the dispatcher looping in a thread,
on SQLite and on PostgreSQL: every bad spec is refused at submit with the field named (and the
dispatcher stays alive), quotas cannot be dodged, tokens can be listed, revoked and expire, arrays
are stored once and every listing is paged."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scheduler_server import serving

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.store import SqlStore, open_store
from kubeforge.scheduler_client import SchedulerClient, SchedulerError

ADMIN = "limits-admin-token-0123456789"
TRAINING = {
    "train_data": "/data/train.parquet",
    "validation_data": "/data/validation.parquet",
    "preprocessor": "/data/preprocessor.json",
    "model_dir": "/out/model",
    "run_dir": "/out/run",
    "checkpoint_dir": "/out/checkpoints",
}


class Running:
    """A served API whose dispatcher loops in a thread, as `kubeforge queue serve` runs it."""

    def __init__(self, url: str, store: SqlStore, dispatcher: Dispatcher) -> None:
        self.url, self.store, self.dispatcher = url, store, dispatcher

    def client(self, token: str = ADMIN) -> SchedulerClient:
        return SchedulerClient(self.url, token)

    def wait_for(self, client: SchedulerClient, job_id: int, state: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while (found := client.job(job_id)["state"]) != state:
            assert time.monotonic() < deadline, f"job {job_id} is {found}, not {state}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def running(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("limits")
    store = open_store(module_store_url)
    store.add_token(ADMIN, "admin", admin=True)
    dispatcher = Dispatcher(store, LocalBackend(root / "launches", capacity=Resources(2000, 4096)), grace_s=2)
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    loop.start()
    with serving(SchedulerAPI(store, dispatcher, logs=dispatcher.backend.log_range)) as url:
        with SchedulerClient(url, ADMIN) as admin:
            admin.put_queue("q", {"cpu": 2, "memory": "4Gi"})
            admin._request(  # a small queue with tight per-team caps
                "PUT",
                "/v1/queues/capped",
                {
                    "nominal": {"cpu": 1, "memory": "1Gi"},
                    "min_request": {"cpu": "100m", "memory": "16Mi"},
                    "max_pending_per_team": 3,
                    "max_array_tasks": 5,
                },
            )
        yield Running(url, store, dispatcher)
    stop.set()
    loop.join(timeout=30)
    store.close()


def _status(running: Running, method: str, path: str, body: object = None, token: str = ADMIN) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else b""
    with requests.request(
        method, f"{running.url}{path}", data=data, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as response:
        return response.status_code, response.text


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"training": {**TRAINING, "bogus": 1}}, "training.bogus: unknown field"),
        ({"training": {**TRAINING, "epochs": "ten"}}, "training.epochs: expected a whole number"),
        ({"training": {**TRAINING, "epochs": 0}}, "training.epochs is 0"),
        ({"training": {"train_data": "x"}}, "training.validation_data: required"),
        ({"training": {**TRAINING, "hidden_layers": [64, "x"]}}, "training.hidden_layers: expected a list"),
        ({"command": ["true"], "env": {"1BAD": "x"}}, "env: '1BAD' is not a variable name"),
        ({"command": ["true"], "env": {"OK": 3}}, "env.OK: expected a string"),
        ({"command": ["true"], "workers": 0}, "workers: expected a whole number from 1"),
        ({"command": ["true"], "resources": {"cpu": 0}}, "resources.cpu: 0m per worker is below"),
        ({"command": ["true"], "resources": {"memory": 0}}, "resources.memory: 0Mi per worker is below"),
        ({"command": ["true"], "colour": "red"}, "job: unknown field(s) ['colour']"),
    ],
)
def test_bad_specs_are_refused_at_submit_naming_the_field(
    running: Running, spec: dict[str, object], field: str
) -> None:
    status, text = _status(running, "POST", "/v1/jobs", {"queue": "q", **spec})
    assert status == 400 and field in json.loads(text)["error"], text


def test_a_bad_training_spec_never_reaches_the_dispatcher_which_keeps_running_others(running: Running) -> None:
    status, _ = _status(running, "POST", "/v1/jobs", {"queue": "q", "training": {"bogus": 1}})
    assert status == 400
    with running.client() as admin:
        good = admin.submit({"queue": "q", "command": ["true"]})
        running.wait_for(admin, good, "succeeded")
        health = admin.health()
    assert health["status"] == "ok" and health["dispatcher"]["alive"] and health["dispatcher"]["last_step_at"]


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_training = st.dictionaries(
    st.sampled_from([*TRAINING, "epochs", "batch_size", "dropout", "hidden_layers", "bogus"]),
    st.one_of(_values, st.sampled_from(list(TRAINING.values()))),
    max_size=9,
)
_spec = st.fixed_dictionaries(
    {"queue": st.sampled_from(["q", "capped", "nope", 3])},
    optional={
        "command": st.one_of(st.just(["true"]), _values),
        "training": st.one_of(_training, _values),
        "resources": st.one_of(st.fixed_dictionaries({}, optional={"cpu": _values, "memory": _values}), _values),
        "workers": _values,
        "priority": _values,
        "max_runtime_s": _values,
        "env": st.one_of(st.dictionaries(st.text(max_size=4), _values, max_size=2), _values),
        "depends_on": _values,
        "retries": _values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_spec)
def test_fuzzed_job_specs_get_an_answer_under_500_and_the_dispatcher_lives(running: Running, spec: object) -> None:
    status, text = _status(running, "POST", "/v1/jobs", spec)
    assert status < 500, text
    if status == 201:  # it was valid: cancel it so that the queue stays free
        _status(running, "DELETE", f"/v1/jobs/{json.loads(text)['id']}")
    assert running.dispatcher.health()["alive"]


def test_another_teams_token_reaches_nothing_of_this_team(running: Running) -> None:
    with running.client() as admin:
        alice, bob = (SchedulerClient(running.url, admin.create_token(team)) for team in ("alice-l", "bob-l"))
    with alice, bob:
        job = alice.submit({"queue": "q", "command": ["sh", "-c", "echo alice-secret"]})
        array = alice.submit_array({"queue": "q", "command": ["true"]}, "0-1")[0]
        running.wait_for(alice, job, "succeeded")
        assert alice.logs(job) == "alice-secret\n"
        for attempt in (
            lambda: bob.job(job),
            lambda: bob.logs(job),
            lambda: bob.cancel(job),
            lambda: bob.array(array),
            lambda: bob.cancel_array(array),
        ):
            with pytest.raises(SchedulerError, match="404"):
                attempt()
        assert job not in {found["id"] for found in bob.jobs()}
        for attempt in (bob.tokens, lambda: bob.revoke_token("0" * 16), lambda: bob.create_token("alice-l")):
            with pytest.raises(SchedulerError, match="403"):
                attempt()
        with pytest.raises(SchedulerError, match="403: team"):
            bob.submit({"queue": "q", "command": ["true"], "team": "alice-l"})


def test_per_team_caps_on_pending_jobs_and_array_size(running: Running) -> None:
    with running.client() as admin:
        token = admin.create_token("capped-team")
    spec = {"queue": "capped", "command": ["sleep", "60"], "resources": {"cpu": 1, "memory": "64Mi"}}
    with SchedulerClient(running.url, token) as team:
        with pytest.raises(SchedulerError, match="400: array: 6 tasks; queue 'capped' takes arrays of at most 5"):
            team.submit_array(spec, "0-5")
        ids = [team.submit(spec)]
        running.wait_for(team, ids[0], "running")  # it fills the queue: the next three wait
        ids += [team.submit(spec) for _ in range(3)]
        status, text = _status(running, "POST", "/v1/jobs", spec, token)
        assert status == 429 and "at most 3 per team" in text
        with requests.post(
            f"{running.url}/v1/jobs", json=spec, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as response:
            assert response.headers["Retry-After"] == "2"
        for job_id in ids:
            team.cancel(job_id)


def test_tokens_are_listed_without_the_secret_revoked_at_once_and_expire(running: Running) -> None:
    expired = "expired-token-0123456789"
    running.store.add_token(expired, "rotating", expires_at=time.time() - 1)
    with running.client() as admin:
        token = admin.create_token("rotating")
        admin.create_token("rotating", expires_in_s=3600)
        with SchedulerClient(running.url, token) as team, SchedulerClient(running.url, expired) as late:
            team.jobs()
            with pytest.raises(SchedulerError, match="401"):
                late.jobs()
            listed = admin.tokens("rotating")
            assert len(listed) == 3 and not any(token in json.dumps(info) for info in listed)
            assert sorted(info["expires_at"] is None for info in listed) == [False, False, True]
            admin.revoke_token(next(info["id"] for info in listed if info["expires_at"] is None))
            with pytest.raises(SchedulerError, match=r"401: unknown bearer token \(or revoked, or expired\)"):
                team.jobs()
        assert len(admin.tokens("rotating")) == 2
        with pytest.raises(SchedulerError, match="404: token"):
            admin.revoke_token("0123456789abcdef")


def test_an_array_stores_its_spec_once_and_is_read_page_by_page(running: Running) -> None:
    big_env = {f"VAR_{index}": "x" * 1000 for index in range(100)}  # a 100 kB spec
    with running.client() as admin:
        admin.put_queue("arrays", {"cpu": 1, "memory": "1Gi"})
        ids = admin.submit_array(
            {"queue": "arrays", "command": ["true"], "env": big_env, "resources": {"cpu": 1}}, "0-1999"
        )
        with running.store.read() as cur:
            stored = cur.execute("SELECT SUM(LENGTH(spec)) FROM jobs WHERE array_id = ?", (ids[0],)).fetchone()[0]
            once = cur.execute("SELECT LENGTH(spec) FROM arrays WHERE id = ?", (ids[0],)).fetchone()[0]
        assert stored == 0 and 100_000 < once < 200_000
        status, text = _status(running, "GET", f"/v1/arrays/{ids[0]}")
        page = json.loads(text)
        assert status == 200 and len(text) < 500_000 and len(page["tasks"]) == 1000 and page["next_after"] == 999
        assert page["spec"]["env"] == big_env
        tasks = admin.array(ids[0])
        assert [task["id"] for task in tasks] == ids
        cancelled = admin.cancel_array(ids[0])  # the unfinished tasks (they run one at a time meanwhile)
        assert cancelled and cancelled == ids[-len(cancelled) :]


def test_job_listings_are_paged_newest_first(running: Running) -> None:
    with running.client() as admin:
        token = admin.create_token("pager")
    with SchedulerClient(running.url, token) as team:
        ids = [team.submit({"queue": "q", "command": ["true"]}) for _ in range(5)]
        status, text = _status(running, "GET", "/v1/jobs?limit=2", token=token)
        page = json.loads(text)
        assert status == 200 and [job["id"] for job in page["jobs"]] == ids[:-3:-1] and page["next_before"] == ids[3]
        assert [job["id"] for job in team.jobs()] == ids[::-1]
        assert [job["id"] for job in team.jobs(limit=3)] == ids[:-4:-1]
        status, text = _status(running, "GET", "/v1/jobs?limit=100000", token=token)
        assert status == 400 and "?limit: expected a whole number from 1 to 1000" in text


def test_logs_are_a_tail_by_default_and_ranges_on_request(running: Running, tmp_path: Path) -> None:
    size = (1 << 20) + 70_017
    script = f"import sys; sys.stdout.write(''.join(chr(48 + i % 10) for i in range({size})))"
    with running.client() as admin:
        job = admin.submit({"queue": "q", "command": [sys.executable, "-c", script]})
        running.wait_for(admin, job, "succeeded")
        expected = "".join(chr(48 + i % 10) for i in range(size)).encode()
        start, tail, total = admin.log_range(job)
        assert (start, total, tail) == (size - 65536, size, expected[-65536:])
        assert admin.log_range(job, offset=1000, limit=10) == (1000, expected[1000:1010], size)
        start, first, _ = admin.log_range(job, offset=0)
        assert len(first) == 1 << 20  # one request returns at most 1 MiB
        assert b"".join(admin.log_chunks(job)) == expected


def test_a_team_at_its_running_cap_waits_while_other_teams_run(running: Running) -> None:
    with running.client() as admin:
        admin._request(
            "PUT", "/v1/queues/one-each", {"nominal": {"cpu": 1, "memory": "1Gi"}, "max_running_per_team": 1}
        )
        greedy, other = (SchedulerClient(running.url, admin.create_token(team)) for team in ("greedy", "other"))
    spec = {"queue": "one-each", "command": ["sleep", "60"], "resources": {"cpu": "100m", "memory": "16Mi"}}
    with greedy, other:
        first, second = greedy.submit(spec), greedy.submit(spec)
        running.wait_for(greedy, first, "running")
        theirs = other.submit(spec)
        running.wait_for(other, theirs, "running")  # admitted past greedy's waiting job
        assert greedy.job(second)["state"] == "pending"
        greedy.cancel(first)
        running.wait_for(greedy, second, "running")
        for client, job_id in ((greedy, second), (other, theirs)):
            client.cancel(job_id)
