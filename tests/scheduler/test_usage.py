"""Per-queue usage (GET /v1/usage) and its history (GET /v1/usage/history): the bucket arithmetic on
built jobs, then the endpoints over real HTTP with a real dispatcher and local backend, on SQLite
and PostgreSQL: totals match the dispatcher's own accounting, a team sees only its own part, the
admin every team's, and an API without a dispatcher answers the same from the store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from scheduler_builders import job, queue
from scheduler_server import serving

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import JobState, QueueSpec
from kubeforge.scheduler.store import open_store
from kubeforge.scheduler.store.base import SqlStore
from kubeforge.scheduler.usage import usage_history, usage_report

TOKENS = {"alpha": "alpha-team-token-0123456789", "beta": "beta-team-token-0123456789", "admin": "admin-0123456789"}


def _held(queue_name: str, cpu: float, team: str, admitted: float, finished: float | None = None) -> object:
    built = job(queue_name, cpu=cpu, team=team)
    built.state = JobState.SUCCEEDED if finished is not None else JobState.RUNNING
    built.admitted_at, built.finished_at = admitted, finished
    return built


def test_history_averages_each_bucket_and_shows_a_team_only_its_own_part() -> None:
    queues = [queue("q", cpu=2, cohort="c", borrow=4)]
    jobs = [
        _held("q", 1, "alpha", admitted=-30, finished=50),  # half the quota for the first half of the window
        _held("q", 4, "beta", admitted=75),  # twice the quota (borrowing) for the last quarter, still running
        _held("gone", 1, "alpha", admitted=0),  # a deleted queue: not drawn
    ]
    requeued = job("q", cpu=2, team="alpha")
    requeued.admitted_at = 10.0  # admitted once, preempted, pending again: holds nothing now
    fair = {"alpha": (0.25, 99.0), "beta": (0.5, 99.0)}
    answer = usage_history(queues, [*jobs, requeued], fair, (0.0, 100.0, 4), "alpha", admin=False)  # type: ignore[list-item]

    assert answer["times"] == [0.0, 25.0, 50.0, 75.0] and answer["bucket_s"] == 25.0
    [line] = answer["queues"]
    assert line["share"] == [0.5, 0.5, 0.0, 2.0]
    assert line["teams"] == {"alpha": [0.5, 0.5, 0.0, 0.0]}
    assert answer["fair_share"] == {"alpha": {"history": 0.25, "updated_at": 99.0}}
    admin = usage_history(queues, jobs, fair, (0.0, 100.0, 4), "admin", admin=True)  # type: ignore[arg-type]
    assert set(admin["queues"][0]["teams"]) == {"alpha", "beta"} and set(admin["fair_share"]) == {"alpha", "beta"}


def test_usage_counts_gangs_against_quota_and_borrowing() -> None:
    queues = [queue("q", cpu=2, cohort="c", borrow=4), queue("r", cpu=2, cohort="c")]
    holding = [job("q", cpu=1, workers=3, team="alpha"), job("q", cpu=0.5, team="beta")]
    answer = usage_report(queues, holding, "beta", admin=False)
    q, r = answer["queues"]
    assert q["used"]["cpu"] == "3500m" and q["borrowed"]["cpu"] == "1500m" and q["share"] == 1.75
    assert q["teams"] == {"beta": {"cpu": "500m", "memory": "1Mi", "gpu": 0}}
    assert r["used"]["cpu"] == "0m" and r["teams"] == {}
    assert answer["cohorts"]["c"]["pool"]["cpu"] == "4000m" and answer["cohorts"]["c"]["used"]["cpu"] == "3500m"


@pytest.fixture
def stack(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, Dispatcher, str]]:
    store = open_store(store_url)
    store.add_token(TOKENS["admin"], "admin", admin=True)
    for team in ("alpha", "beta"):
        store.add_token(TOKENS[team], team)
    store.put_queue(QueueSpec("q", Resources(2000, 4096)))
    backend = LocalBackend(tmp_path_factory.mktemp("launches"), capacity=Resources(2000, 4096))
    dispatcher = Dispatcher(store, backend, grace_s=1)
    dispatcher.start()
    try:
        with serving(SchedulerAPI(store, dispatcher, logs=backend.log_range)) as url:
            yield store, dispatcher, url
    finally:
        for held in list(dispatcher.scheduler.cache.holding):
            store.request_cancel(held)
        dispatcher.step()
        store.close()


def _get(url: str, path: str, team: str) -> requests.Response:
    return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {TOKENS[team]}"}, timeout=10)


def test_usage_endpoints_follow_the_dispatchers_accounting_and_the_token_rules(
    stack: tuple[SqlStore, Dispatcher, str],
) -> None:
    store, dispatcher, url = stack
    body = {"queue": "q", "command": ["sleep", "30"], "resources": {"cpu": "1500m", "memory": "1Gi"}}
    answer = requests.post(
        f"{url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {TOKENS['alpha']}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    dispatcher.step()
    with dispatcher.lock:
        accounted = dispatcher.scheduler.cache.usage["q"]
    assert accounted == Resources(1500, 1024)

    views = {team: _get(url, "/v1/usage", team).json() for team in TOKENS}
    for view in views.values():
        assert view["source"] == "dispatcher"
        [q] = view["queues"]
        assert q["used"] == accounted.to_dict() and q["share"] == 0.75 and q["borrowed"]["cpu"] == "0m"
    assert set(views["alpha"]["queues"][0]["teams"]) == {"alpha"}
    assert views["beta"]["queues"][0]["teams"] == {}
    assert set(views["admin"]["queues"][0]["teams"]) == {"alpha"}

    with serving(SchedulerAPI(store)) as replica:  # an API replica without a dispatcher reads the store
        from_store = _get(replica, "/v1/usage", "alpha").json()
    assert from_store["source"] == "store" and from_store["queues"] == views["alpha"]["queues"]

    history = _get(url, "/v1/usage/history?window_s=60&buckets=6", "beta").json()
    assert len(history["times"]) == 6 and history["truncated"] is False
    [line] = history["queues"]
    assert line["share"][-1] > 0 and line["teams"] == {}
    assert _get(url, "/v1/usage/history?window_s=60&buckets=6", "alpha").json()["queues"][0]["teams"]["alpha"][-1] > 0

    refused = _get(url, "/v1/usage/history?window_s=5", "alpha")
    assert refused.status_code == 400 and "?window_s" in refused.json()["error"]
    assert requests.get(f"{url}/v1/usage", timeout=10).status_code == 401
    assert (
        requests.post(f"{url}/v1/usage", headers={"Authorization": f"Bearer {TOKENS['admin']}"}, timeout=10).status_code
        == 405
    )
    paths = requests.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/usage", "/v1/usage/history"} <= set(paths)
