"""A loopback HTTP server speaking the Kubernetes REST paths of serving.kserve.io/v1beta1 inferenceservices.

No API server can run here; this one lets the real `kubernetes` client code run. It plays
KServe's controller too: an object turns Ready on the `ready_after_reads`-th read after a change.
Like the API server, it keeps a resourceVersion per object and refuses a replace (PUT) that carries
a stale one with 409 Conflict; `conflicts_to_inject` makes that many replaces meet a change made
"by someone else" just before them.
Every object it receives is validated against the upstream InferenceService CRD schema.
With `rbac` (kube_rbac) every request is authorized as the API server would: 401 without a known bearer
token, 403 with the API server's Status body for what the caller's roles do not grant (listed in `denied`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
from crd_schema import crd_validator
from kube_rbac import RBAC, forbidden_status, request_attributes, unauthorized_status

PREFIX = "/apis/serving.kserve.io/v1beta1/namespaces/"
CRD = "serving.kserve.io_inferenceservices.yaml"


class FakeKServe(ThreadingHTTPServer):
    """The server and its state: objects by (namespace, name), reads since the last change, a call log."""

    def __init__(self, validator: jsonschema.Draft7Validator, ready_after_reads: int = 2) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.validator = validator
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads_since_change: dict[tuple[str, str], int] = {}
        self.ready_after_reads = ready_after_reads
        self.calls: list[str] = []
        self.versions = 0
        self.conflicts_to_inject = 0
        self.rbac: RBAC | None = None
        self.denied: list[str] = []

    def next_version(self) -> str:
        """A new resourceVersion, as the API server assigns on every write."""
        self.versions += 1
        return str(self.versions)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def schema_errors(self, obj: dict[str, Any]) -> list[str]:
        """Violations of the InferenceService CRD schema, as 'path: message' lines."""
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self.validator.iter_errors(obj)]


class _Handler(BaseHTTPRequestHandler):
    server: FakeKServe

    def log_message(self, *args: Any) -> None:
        pass

    def _refused(self) -> bool:
        """Answer 401/403 (and say so) when RBAC is on and does not grant this request."""
        rbac = self.server.rbac
        if rbac is None:
            return False
        user = rbac.user_for(self.headers.get("Authorization"))
        if user is None:
            self._reply(401, unauthorized_status())
            return True
        attributes = request_attributes(self.command, self.path)
        if rbac.allows(user, attributes):
            return False
        status = forbidden_status(user, attributes)
        self.server.denied.append(status["message"])
        self._reply(403, status)
        return True

    def _key(self) -> tuple[str, str, str | None]:
        assert self.path.startswith(PREFIX), self.path
        parts = self.path[len(PREFIX) :].split("?")[0].split("/")
        assert parts[1] == "inferenceservices", self.path
        return parts[0], parts[1], parts[2] if len(parts) > 2 else None

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def _not_found(self, name: str | None) -> None:
        self._reply(
            404,
            {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": f"{name} not found"},
        )

    def _invalid(self, errors: list[str]) -> None:
        self._reply(422, {"kind": "Status", "reason": "Invalid", "code": 422, "message": "; ".join(errors)})

    def do_POST(self) -> None:
        if self._refused():
            return None
        namespace, _, _ = self._key()
        body = self._body()
        errors = self.server.schema_errors(body)
        if errors:
            return self._invalid(errors)
        key = (namespace, body["metadata"]["name"])
        self.server.calls.append(f"create {key[1]}")
        if key in self.server.objects:
            return self._reply(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
        body["metadata"].update(generation=1, resourceVersion=self.server.next_version())
        self.server.objects[key] = body
        self.server.reads_since_change[key] = 0
        self._reply(201, body)

    def do_GET(self) -> None:
        if self._refused():
            return None
        namespace, _, name = self._key()
        key = (namespace, str(name))
        current = self.server.objects.get(key)
        if current is None:
            return self._not_found(name)
        self.server.reads_since_change[key] += 1
        if self.server.reads_since_change[key] >= self.server.ready_after_reads:
            current["status"] = {
                "observedGeneration": current["metadata"]["generation"],
                "url": f"http://{name}.{namespace}.example.com",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        else:
            current["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "RevisionMissing"}]}
        self._reply(200, current)

    def do_PUT(self) -> None:
        if self._refused():
            return None
        namespace, _, name = self._key()
        key = (namespace, str(name))
        replacement = self._body()
        current = self.server.objects.get(key)
        if current is None:
            return self._not_found(name)
        self.server.calls.append(f"replace {name}")
        if self.server.conflicts_to_inject:
            self.server.conflicts_to_inject -= 1
            current["metadata"]["resourceVersion"] = self.server.next_version()
        if replacement["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            message = "the object has been modified; please apply your changes to the latest version and try again"
            return self._reply(409, {"kind": "Status", "reason": "Conflict", "code": 409, "message": message})
        errors = self.server.schema_errors(replacement)
        if errors:
            return self._invalid(errors)
        replacement["metadata"].update(
            generation=current["metadata"]["generation"] + 1, resourceVersion=self.server.next_version()
        )
        replacement.pop("status", None)
        self.server.objects[key] = replacement
        self.server.reads_since_change[key] = 0
        self._reply(200, replacement)

    def do_DELETE(self) -> None:
        if self._refused():
            return None
        namespace, _, name = self._key()
        if self.server.objects.pop((namespace, str(name)), None) is None:
            return self._not_found(name)
        self.server.calls.append(f"delete {name}")
        self._reply(200, {"kind": "Status", "status": "Success"})


@contextmanager
def running_fake_kserve(ready_after_reads: int = 2, rbac: RBAC | None = None) -> Iterator[FakeKServe]:
    """Serve a FakeKServe on a free loopback port for the block; skips the test when the CRD is absent."""
    fake = FakeKServe(crd_validator(CRD, "v1beta1"), ready_after_reads)
    fake.rbac = rbac
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.shutdown()
        fake.server_close()


__all__ = ["CRD", "FakeKServe", "running_fake_kserve"]
