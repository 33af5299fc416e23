"""A loopback HTTP server that speaks the Kubernetes REST paths kubeforge's clients use.

It stands in for a Kubernetes API server (none can run here) so that the real `kubernetes`
client code runs: namespaced objects of any API group, batch/v1 Jobs included (create, get,
list with label selectors, merge patch, delete), pods with their logs, and nodes. Tests play
the operator by setting status and pods.

With `rbac` (see kube_rbac: the Roles and bindings the chart renders) it authorizes every request as
the API server does: a bearer token names the service account, and a request its roles do not grant
gets 403 with the API server's Status body (401 without a known token). `api_client()` then
authenticates as `service_account`; `denied` lists what was refused.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from kube_rbac import RBAC, forbidden_status, request_attributes, unauthorized_status
from kubernetes import client
from loopback_http import serving


@dataclass
class FakeKube:
    """The server's state: objects by (group/version, namespace, plural) and a request log."""

    objects: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    log_queries: list[dict[str, str]] = field(default_factory=list)
    """The query parameters of each log read (limitBytes, tailLines)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    rbac: RBAC | None = None
    token: str = ""
    denied: list[str] = field(default_factory=list)

    def api_client(self) -> client.ApiClient:
        """A real kubernetes ApiClient pointed at this server (with the service account's token under RBAC)."""
        configuration = client.Configuration(host=self.url)
        if self.token:
            configuration.api_key = {"authorization": self.token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def get(self, api: str, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        """A stored object, or None."""
        with self.lock:
            return self.objects.get((api, namespace, plural), {}).get(name)

    def set_status(self, api: str, namespace: str, plural: str, name: str, status: dict[str, Any]) -> None:
        """Play the operator: replace an object's status."""
        with self.lock:
            self.objects[(api, namespace, plural)][name]["status"] = status

    def add_pod(self, namespace: str, name: str, labels: dict[str, str], log: str) -> None:
        """Play the operator: a pod with labels and a log."""
        with self.lock:
            self.pods[(namespace, name)] = {
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "log": log,
            }


def _matches(labels: dict[str, str], selector: str) -> bool:
    wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
    return all(labels.get(key) == value for key, value in wanted.items())


class _Handler(BaseHTTPRequestHandler):
    state: FakeKube

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _route(self) -> tuple[list[str], dict[str, list[str]]] | None:
        """The path's parts and query, or None once the request was refused (401/403 under RBAC)."""
        parsed = urlparse(self.path)
        self.state.requests.append((self.command, parsed.path))
        rbac = self.state.rbac
        if rbac is not None:
            user = rbac.user_for(self.headers.get("Authorization"))
            if user is None:
                self._send(401, unauthorized_status())
                return None
            attributes = request_attributes(self.command, self.path)
            if not rbac.allows(user, attributes):
                status = forbidden_status(user, attributes)
                self.state.denied.append(status["message"])
                self._send(403, status)
                return None
        return [part for part in parsed.path.split("/") if part], parse_qs(parsed.query)

    def do_POST(self) -> None:
        routed = self._route()
        if routed is None:
            return None
        parts, _ = routed
        if len(parts) != 6 or parts[0] != "apis":
            return self._status(404, "NotFound")
        key = (f"{parts[1]}/{parts[2]}", parts[4], parts[5])
        obj = self._body()
        name = obj["metadata"]["name"]
        with self.state.lock:
            bucket = self.state.objects.setdefault(key, {})
            if name in bucket:
                return self._status(409, "AlreadyExists")
            obj["metadata"].update(uid=str(uuid.uuid4()), resourceVersion="1")
            bucket[name] = obj
        self._send(201, obj)

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return None
        parts, query = routed
        selector = query.get("labelSelector", [""])[0]
        if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[4] == "pods":
            return self._pods(parts, selector, query)
        if parts == ["api", "v1", "nodes"]:
            with self.state.lock:
                nodes = list(self.state.nodes)
            return self._send(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": nodes})
        key = (f"{parts[1]}/{parts[2]}", parts[4], parts[5]) if len(parts) >= 6 else None
        with self.state.lock:
            bucket = self.state.objects.get(key, {}) if key else {}
            if len(parts) == 7:
                obj = bucket.get(parts[6])
                return self._send(200, obj) if obj else self._status(404, "NotFound")
            items = [o for o in bucket.values() if _matches(o["metadata"].get("labels", {}), selector)]
        self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})

    def _pods(self, parts: list[str], selector: str, query: dict[str, list[str]]) -> None:
        namespace = parts[3]
        with self.state.lock:
            if len(parts) == 7 and parts[6] == "log":
                pod = self.state.pods.get((namespace, parts[5]))
                if not pod:
                    return self._status(404, "NotFound")
                log = str(pod["log"])  # the kubelet's tailLines, then limitBytes
                if "tailLines" in query:
                    log = "".join(log.splitlines(keepends=True)[-int(query["tailLines"][0]) :])
                if "limitBytes" in query:
                    log = log.encode()[: int(query["limitBytes"][0])].decode(errors="replace")
                self.state.log_queries.append({key: values[0] for key, values in query.items()})
                return self._send(200, log, "text/plain")
            items = [
                {"metadata": pod["metadata"], "spec": {"containers": []}}
                for (ns, _), pod in self.state.pods.items()
                if ns == namespace and _matches(pod["metadata"]["labels"], selector)
            ]
        self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def do_PATCH(self) -> None:
        routed = self._route()
        if routed is None:
            return None
        parts, _ = routed
        key = (f"{parts[1]}/{parts[2]}", parts[4], parts[5])
        patch = self._body()
        with self.state.lock:
            obj = self.state.objects.get(key, {}).get(parts[6])
            if obj is None:
                return self._status(404, "NotFound")
            _merge(obj, patch)
        self._send(200, obj)

    def do_DELETE(self) -> None:
        routed = self._route()
        if routed is None:
            return None
        parts, _ = routed
        key = (f"{parts[1]}/{parts[2]}", parts[4], parts[5])
        with self.state.lock:
            obj = self.state.objects.get(key, {}).pop(parts[6], None)
        self._send(200, {"kind": "Status", "status": "Success"}) if obj else self._status(404, "NotFound")


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


@contextmanager
def running_fake_kube(rbac: RBAC | None = None, service_account: tuple[str, str] = ("", "")) -> Iterator[FakeKube]:
    """Serve a FakeKube on a free loopback port for the duration of the block.

    With `rbac`, requests are authorized and `api_client()` acts as `service_account` (namespace, name).
    """
    state = FakeKube(rbac=rbac, token=rbac.token_for(*service_account) if rbac is not None else "")
    with serving(_Handler, state) as url:
        state.url = url
        yield state


__all__ = ["FakeKube", "running_fake_kube"]
