"""A loopback HTTP server that speaks the Vertex AI v1 REST paths kubeforge's deploy target uses.

It stands in for Vertex AI (which cannot be reached here) so that the real google-cloud-aiplatform
client code runs over its REST transport, pointed at this server with
`aiplatform.init(api_endpoint="http://127.0.0.1:PORT", api_transport="rest", credentials=AnonymousCredentials())`.
Paths: models (upload, get by id or `id@version`, list with a label filter), endpoints (create,
get, list with a label filter, deployModel, undeployModel), customJobs (create, get, list with a
label filter, cancel). Long-running operations are answered
already done, as `{"name": ".../operations/N", "done": true, "response": {...}}`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from loopback_http import serving

_TYPES = "type.googleapis.com/google.cloud.aiplatform.v1."
_LABEL_FILTER = re.compile(r'labels\.([\w-]+)\s*=\s*"?([\w.-]+)"?')


@dataclass
class FakeVertex:
    """The server's state: models (each a list of versions), endpoints, custom jobs and a log of calls.

    `custom_job_creates` keeps every CustomJob creation body as the client sent it.
    """

    models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_job_creates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    operations: int = 0

    def model_version(self, name: str) -> dict[str, Any] | None:
        """A model version by `projects/.../models/ID[@VERSION_OR_ALIAS]` (the default version without one)."""
        model_name, _, version = name.partition("@")
        versions = self.models.get(model_name)
        if not versions:
            return None
        if not version:
            return next(v for v in versions if "default" in v["versionAliases"])
        return next((v for v in versions if version == v["versionId"] or version in v["versionAliases"]), None)


def _labels_match(obj: dict[str, Any], filter_text: str) -> bool:
    wanted = dict(_LABEL_FILTER.findall(filter_text))
    labels = obj.get("labels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


class _Handler(BaseHTTPRequestHandler):
    state: FakeVertex

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, body: Any, code: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what: str) -> None:
        self._send({"error": {"code": 404, "message": f"{what} not found", "status": "NOT_FOUND"}}, 404)

    def _operation(self, parent: str, response_type: str, response: dict[str, Any]) -> None:
        self.state.operations += 1
        name = f"{parent}/operations/{self.state.operations}"
        self._send({"name": name, "done": True, "response": {"@type": _TYPES + response_type, **response}})

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parsed = urlparse(self.path)
        path = unquote(parsed.path).removeprefix("/v1/")
        self.state.calls.append(f"{self.command} {path}")
        return path, parse_qs(parsed.query)

    def do_GET(self) -> None:
        path, query = self._route()
        filter_text = query.get("filter", [""])[0]
        with self.state.lock:
            if path.endswith("/models"):
                defaults = [self.state.model_version(name) for name in self.state.models]
                found = [m for m in defaults if m is not None and _labels_match(m, filter_text)]
                return self._send({"models": found})
            if path.endswith("/endpoints"):
                return self._send(
                    {"endpoints": [e for e in self.state.endpoints.values() if _labels_match(e, filter_text)]}
                )
            if path.endswith("/customJobs"):
                jobs = [job for job in self.state.custom_jobs.values() if _labels_match(job, filter_text)]
                return self._send({"customJobs": jobs})
            if "/customJobs/" in path:
                job = self.state.custom_jobs.get(path)
                return self._send(job) if job else self._not_found(path)
            if "/models/" in path:
                version = self.state.model_version(path)
                return self._send(version) if version else self._not_found(path)
            endpoint = self.state.endpoints.get(path)
            return self._send(endpoint) if endpoint else self._not_found(path)

    def do_POST(self) -> None:
        path, _ = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.state.lock:
            if path.endswith("/models:upload"):
                return self._upload(path.removesuffix("/models:upload"), body)
            if path.endswith("/endpoints"):
                return self._create_endpoint(path, body)
            if path.endswith("/customJobs"):
                return self._create_custom_job(path, body)
            name, _, verb = path.partition(":")
            if verb == "cancel" and name in self.state.custom_jobs:
                self.state.custom_jobs[name]["state"] = 6  # JOB_STATE_CANCELLING
                return self._send({})
            endpoint = self.state.endpoints.get(name)
            if endpoint is None:
                return self._not_found(name)
            if verb == "deployModel":
                return self._deploy(endpoint, body)
            if verb == "undeployModel":
                return self._undeploy(endpoint, body)
        self._not_found(path)

    def _upload(self, parent: str, body: dict[str, Any]) -> None:
        model = dict(body["model"])
        parent_model = body.get("parentModel")
        if parent_model:
            versions = self.state.models.get(parent_model)
            if versions is None:
                return self._not_found(parent_model)
            name = parent_model
        else:
            name = f"{parent}/models/{len(self.state.models) + 1}"
            versions = self.state.models.setdefault(name, [])
        version_id = str(len(versions) + 1)
        aliases = list(model.get("versionAliases") or [])
        if "default" in aliases or not versions:
            for older in versions:
                older["versionAliases"] = [a for a in older["versionAliases"] if a != "default"]
            aliases = ["default", *[a for a in aliases if a != "default"]]
        # Vertex marks a custom-container model as deployable on dedicated machines (enum 1)
        model.update(name=name, versionId=version_id, versionAliases=aliases, supportedDeploymentResourcesTypes=[1])
        versions.append(model)
        self._operation(name, "UploadModelResponse", {"model": name, "modelVersionId": version_id})

    def _create_endpoint(self, parent: str, body: dict[str, Any]) -> None:
        name = f"{parent}/{len(self.state.endpoints) + 1}"
        endpoint = {**body, "name": name, "deployedModels": [], "trafficSplit": {}}
        self.state.endpoints[name] = endpoint
        self._operation(name, "Endpoint", endpoint)

    def _create_custom_job(self, parent: str, body: dict[str, Any]) -> None:
        name = f"{parent}/{len(self.state.custom_jobs) + 1}"
        job = {**body, "name": name, "state": 2}  # JOB_STATE_PENDING
        self.state.custom_jobs[name] = job
        self.state.custom_job_creates.append(body)
        self._send(job)

    def _deploy(self, endpoint: dict[str, Any], body: dict[str, Any]) -> None:
        deployed = dict(body["deployedModel"])
        if self.state.model_version(deployed["model"]) is None:
            return self._not_found(deployed["model"])
        model_name, _, version = deployed["model"].partition("@")
        deployed_id = str(1000 + sum(len(e["deployedModels"]) for e in self.state.endpoints.values()) + 1)
        deployed.update(id=deployed_id, model=model_name, modelVersionId=version or "1")
        endpoint["deployedModels"].append(deployed)
        split = {key: int(value) for key, value in (body.get("trafficSplit") or {}).items()}
        endpoint["trafficSplit"] = {(deployed_id if key == "0" else key): value for key, value in split.items()}
        self._operation(endpoint["name"], "DeployModelResponse", {"deployedModel": deployed})

    def _undeploy(self, endpoint: dict[str, Any], body: dict[str, Any]) -> None:
        gone = body["deployedModelId"]
        endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != gone]
        split = body.get("trafficSplit") or {k: v for k, v in endpoint["trafficSplit"].items() if k != gone}
        endpoint["trafficSplit"] = {key: int(value) for key, value in split.items()}
        self._operation(endpoint["name"], "UndeployModelResponse", {})


@contextmanager
def running_fake_vertex() -> Iterator[FakeVertex]:
    """Serve a FakeVertex on a free loopback port for the duration of the block."""
    state = FakeVertex()
    with serving(_Handler, state) as url:
        state.url = url
        yield state


@contextmanager
def isolated_aiplatform_config() -> Iterator[None]:
    """Restore aiplatform's process-wide configuration (set by `aiplatform.init`) when the block ends."""
    from google.cloud.aiplatform import initializer

    saved = dict(vars(initializer.global_config))
    try:
        yield
    finally:
        vars(initializer.global_config).clear()
        vars(initializer.global_config).update(saved)


__all__ = ["FakeVertex", "isolated_aiplatform_config", "running_fake_vertex"]
