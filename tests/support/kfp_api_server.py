"""A loopback HTTP server speaking the KFP v2beta1 REST paths that kfp.Client uses.

No KFP API server can run here, so this stands in for one: healthz, experiments (list with a
display_name filter, create, get, delete), runs (create, get) and recurring runs (create). It
checks what the real server checks on these paths (bearer token when configured, parameters
declared by the pipeline spec, a cron schedule) and plays a run forward one state per poll.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_http import serving

_CREATED_AT = "2026-01-01T00:00:00Z"


@dataclass
class KfpState:
    """What the fake server holds; tests read it to see exactly what was created."""

    token: str | None = None
    run_outcome: str = "SUCCEEDED"
    failing_task: str = ""
    reject_runs: bool = False
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class _Handler(BaseHTTPRequestHandler):
    state: KfpState

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        state = self.state
        url = urllib.parse.urlsplit(self.path)
        state.requests.append(f"{method} {url.path}")
        if state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
            self._reply(401, {"error": "Unauthenticated", "code": 16, "message": "missing or bad bearer token"})
            return
        parts = url.path.removeprefix("/apis/v2beta1/").split("/")
        body = self._body() if method == "POST" else {}
        query = dict(urllib.parse.parse_qsl(url.query))
        route = (method, parts[0], len(parts))
        handlers = {
            ("GET", "healthz", 1): lambda: (200, {"commit_sha": "fake", "tag_name": "2.5.0", "multi_user": False}),
            ("GET", "experiments", 1): lambda: self._list_experiments(query),
            ("POST", "experiments", 1): lambda: self._create_experiment(body),
            ("GET", "experiments", 2): lambda: self._get(state.experiments, parts[1]),
            ("DELETE", "experiments", 2): lambda: (200, state.experiments.pop(parts[1]) and {}),
            ("POST", "runs", 1): lambda: self._create_run(body),
            ("GET", "runs", 2): lambda: self._get_run(parts[1]),
            ("POST", "recurringruns", 1): lambda: self._create_recurring_run(body),
        }
        handler = handlers.get(route)
        if handler is None:
            self._reply(404, {"code": 5, "message": f"no route {method} {url.path}"})
            return
        self._reply(*handler())

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length", 0))
        result: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return result

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.state.ids)}"

    def _get(self, table: dict[str, dict[str, Any]], key: str) -> tuple[int, dict[str, Any]]:
        if key not in table:
            return 404, {"code": 5, "message": f"{key} not found"}
        return 200, table[key]

    def _list_experiments(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        found = list(self.state.experiments.values())
        if "filter" in query:
            for predicate in json.loads(query["filter"])["predicates"]:
                found = [e for e in found if e.get(predicate["key"]) == predicate["stringValue"]]
        return 200, {"experiments": found, "total_size": len(found)}

    def _create_experiment(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        experiment = {**body, "experiment_id": self._new_id("experiment"), "created_at": _CREATED_AT}
        self.state.experiments[experiment["experiment_id"]] = experiment
        return 200, experiment

    def _spec_problem(self, body: dict[str, Any]) -> str:
        if body.get("experiment_id") not in self.state.experiments:
            return f"experiment {body.get('experiment_id')!r} does not exist"
        spec = body.get("pipeline_spec") or {}
        declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        given = (body.get("runtime_config") or {}).get("parameters") or {}
        undeclared = sorted(set(given) - set(declared))
        if not spec.get("pipelineInfo"):
            return "pipeline_spec is missing or has no pipelineInfo"
        if undeclared:
            return f"parameters {undeclared} are not declared by the pipeline"
        return ""

    def _create_run(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        state = self.state
        problem = "runs are refused by this server" if state.reject_runs else self._spec_problem(body)
        if problem:
            return 400, {"error": problem, "code": 3, "message": problem}
        run = {**body, "run_id": self._new_id("run"), "state": "PENDING", "created_at": _CREATED_AT}
        state.runs[run["run_id"]] = run
        return 200, run

    def _get_run(self, run_id: str) -> tuple[int, dict[str, Any]]:
        state = self.state
        if run_id not in state.runs:
            return 404, {"code": 5, "message": f"run {run_id} not found"}
        run = state.runs[run_id]
        polls = state.polls[run_id] = state.polls.get(run_id, 0) + 1
        tasks = list(run["pipeline_spec"]["root"]["dag"]["tasks"])
        done = min(polls - 1, len(tasks))
        details = []
        for index, task in enumerate(tasks):
            task_state = "SUCCEEDED" if index < done else ("RUNNING" if index == done else "PENDING")
            if task == state.failing_task and index < done:
                task_state = "FAILED"
            details.append({"display_name": task, "state": task_state})
        run["state"] = state.run_outcome if done == len(tasks) else "RUNNING"
        run["run_details"] = {"task_details": details}
        return 200, run

    def _create_recurring_run(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problem = self._spec_problem(body)
        cron = (body.get("trigger") or {}).get("cron_schedule", {}).get("cron", "")
        if not problem and len(cron.split()) != 6:
            problem = f"invalid cron {cron!r}"
        if problem:
            return 400, {"error": problem, "code": 3, "message": problem}
        recurring = {**body, "recurring_run_id": self._new_id("recurring"), "created_at": _CREATED_AT}
        self.state.recurring_runs[recurring["recurring_run_id"]] = recurring
        return 200, recurring


@contextmanager
def running_kfp_api(state: KfpState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields the host URL for kfp.Client."""
    with serving(_Handler, state) as url:
        yield url


__all__ = ["KfpState", "running_kfp_api"]
