"""A loopback HTTP server speaking the Vertex AI REST paths that aiplatform.PipelineJob uses.

No Vertex AI can run here; this stands in for it: the OAuth token endpoint that Application
Default Credentials refresh against (self-signed service-account JWTs, checked against the
key's public half, are accepted too), pipeline job create (POST .../pipelineJobs?pipelineJobId=)
and get. It checks the bearer token and what the real service checks on create (a pipeline spec,
a gs:// output directory, parameters the spec declares), and plays a job forward one task per get (time-gated).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_http import serving

_JOBS = re.compile(r"^/v1(?:beta1)?/projects/([^/]+)/locations/([^/]+)/pipelineJobs(?:/([^/:]+))?$")
_TIME = "2026-01-01T00:00:00Z"


@dataclass
class VertexState:
    """What the fake service holds; tests read it to see exactly what was created."""

    access_token: str = "ya29.fake-access-token"
    service_account_keys: dict[str, str] = field(default_factory=dict)
    """client_email -> public key PEM: self-signed JWTs of these service accounts are accepted."""
    failing_task: str = ""
    """When set, this task ends FAILED and so does every job."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    step_s: float = 0.05
    """A job moves on by one task per get, and at most once in this many seconds (the client's own
    quick gets around create then do not run a whole job before the caller's first poll)."""
    progress: dict[str, tuple[int, float]] = field(default_factory=dict)


def _authorized(state: VertexState, header: str) -> bool:
    """An access token this server issued, or a self-signed JWT (what a key file's credentials send)."""
    token = header.removeprefix("Bearer ")
    if not header.startswith("Bearer ") or not token:
        return False
    if token == state.access_token:
        return True
    from google.auth import exceptions, jwt

    for email, public_key in state.service_account_keys.items():
        try:
            claims = jwt.decode(token, certs=public_key, verify=True)
        except (ValueError, exceptions.GoogleAuthError):
            continue
        if claims.get("iss") == email:
            return True
    return False


class _Handler(BaseHTTPRequestHandler):
    state: VertexState

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        state = self.state
        url = urllib.parse.urlsplit(self.path)
        state.requests.append(f"{method} {url.path}")
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length) if length else b""
        if method == "POST" and url.path == "/token":
            self._reply(200, {"access_token": state.access_token, "expires_in": 3600, "token_type": "Bearer"})
            return
        if not _authorized(state, self.headers.get("Authorization", "")):
            self._error(401, "UNAUTHENTICATED", "request had invalid authentication credentials")
            return
        match = _JOBS.match(url.path)
        if match is None:
            self._error(404, "NOT_FOUND", f"no route {method} {url.path}")
            return
        project, location, job_id = match.groups()
        parent = f"projects/{project}/locations/{location}"
        if method == "POST" and job_id is None:
            query = dict(urllib.parse.parse_qsl(url.query))
            self._create(parent, query.get("pipelineJobId", "job"), json.loads(raw or b"{}"))
        elif method == "GET" and job_id is not None:
            self._get(f"{parent}/pipelineJobs/{job_id}")
        else:
            self._error(404, "NOT_FOUND", f"no route {method} {url.path}")

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, status: str, message: str) -> None:
        self._reply(code, {"error": {"code": code, "message": message, "status": status}})

    def _create(self, parent: str, job_id: str, job: dict[str, Any]) -> None:
        spec = job.get("pipelineSpec") or {}
        runtime = job.get("runtimeConfig") or {}
        declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        undeclared = sorted(set(runtime.get("parameterValues") or {}) - set(declared))
        problem = ""
        if not spec.get("pipelineInfo"):
            problem = "pipelineSpec is missing"
        elif not str(runtime.get("gcsOutputDirectory", "")).startswith("gs://"):
            problem = "runtimeConfig.gcsOutputDirectory must be a gs:// URI"
        elif undeclared:
            problem = f"parameters {undeclared} are not declared by the pipeline"
        name = f"{parent}/pipelineJobs/{job_id}"
        if not problem and name in self.state.jobs:
            problem = f"{name} already exists"
        if problem:
            self._error(400, "INVALID_ARGUMENT", problem)
            return
        created = {**job, "name": name, "state": "PIPELINE_STATE_PENDING", "createTime": _TIME}
        self.state.jobs[name] = created
        self._reply(200, created)

    def _get(self, name: str) -> None:
        state = self.state
        if name not in state.jobs:
            self._error(404, "NOT_FOUND", f"{name} not found")
            return
        job = state.jobs[name]
        steps, moved_at = state.progress.get(name, (-1, 0.0))
        if time.monotonic() - moved_at >= state.step_s:
            steps, moved_at = steps + 1, time.monotonic()
            state.progress[name] = (steps, moved_at)
        tasks = list(job["pipelineSpec"]["root"]["dag"]["tasks"])
        done = min(steps, len(tasks))
        details = []
        for index, task in enumerate(tasks):
            task_state = "SUCCEEDED" if index < done else ("RUNNING" if index == done else "PENDING")
            if task == state.failing_task and index < done:
                task_state = "FAILED"
            details.append({"taskName": task, "state": task_state, "taskId": str(index)})
        finished = done == len(tasks)
        outcome = "PIPELINE_STATE_FAILED" if state.failing_task else "PIPELINE_STATE_SUCCEEDED"
        job["state"] = outcome if finished else "PIPELINE_STATE_RUNNING"
        job["jobDetail"] = {"taskDetails": details}
        if finished and state.failing_task:
            job["error"] = {"code": 9, "message": f"task {state.failing_task} failed"}
        self._reply(200, job)


@contextmanager
def running_vertex_api(state: VertexState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields its base URL (API endpoint and token URI root)."""
    with serving(_Handler, state) as url:
        yield url


__all__ = ["VertexState", "running_vertex_api"]
