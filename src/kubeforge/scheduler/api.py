"""The scheduler's REST API: `respond` answers one `Request` (served by `http_server`), and the same
object is a plain ASGI application for any ASGI server; every route but the docs needs a bearer token.

A team token sees and cancels only its team's jobs (another team's job answers 404);
an admin token sees every job and manages queues and tokens. The OpenAPI document is
served at /openapi.json.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubeforge.errors import InputError
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.group_commit import GroupCommitter
from kubeforge.scheduler.model import Job, JobSpec, QueueSpec, check_name, parse_array_indices
from kubeforge.scheduler.openapi import OPENAPI
from kubeforge.scheduler.store.base import SqlStore

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20
_CACHE_S = 2.0
_JOB_PATH = re.compile(r"^/v1/jobs/(\d{1,18})(/logs)?$")
_ARRAY_PATH = re.compile(r"^/v1/arrays/(\d{1,18})$")
_QUEUE_PATH = re.compile(r"^/v1/queues/([^/]{1,63})$")
_LOG = logging.getLogger("kubeforge.scheduler.api")


JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the API needs it: the Authorization header is the only header read;
    `client` names the connection ("host:port", "" when unknown)."""

    method: str
    path: str
    query: bytes
    authorization: bytes
    body: bytes
    client: str = ""


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SchedulerAPI:
    """Routes requests to the store; with an in-process dispatcher, submissions wake it and
    pending jobs show their position and estimated start. Submissions are group-committed:
    concurrent ones share a transaction and each is answered only after it is recorded."""

    def __init__(self, store: SqlStore, dispatcher: Dispatcher | None = None, logs: Callable[[str], str] | None = None):
        self.store = store
        self.dispatcher = dispatcher
        self._logs = logs
        self._tokens: dict[str, tuple[tuple[str, bool] | None, float]] = {}
        self._queues: tuple[dict[str, QueueSpec], float] = ({}, float("-inf"))
        self._committer = GroupCommitter(store, on_commit=dispatcher.wake if dispatcher is not None else None)

    def close(self) -> None:
        """Record what is still queued for the store and stop the writer thread."""
        self._committer.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            self.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        authorization = b""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                authorization = value
        try:
            body = await _read_body(receive)
        except _HTTPError as exc:
            status, content_type, data = exc.status, JSON, _error(str(exc))
        else:
            peer = scope.get("client")
            client = f"{peer[0]}:{peer[1]}" if peer else ""
            query = scope.get("query_string", b"")
            request = Request(scope["method"], scope["path"], query, authorization, body, client)
            status, content_type, data = await self.respond(request)
        headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def respond(self, request: Request) -> tuple[int, bytes, bytes]:
        """Answer one request: (status, content type, body); errors become 4xx with a JSON message."""
        content_type = JSON
        try:
            status, payload = await self._route(request)
            if isinstance(payload, str):
                content_type, data = b"text/plain; charset=utf-8", payload.encode()
            else:
                data = json.dumps(payload, separators=(",", ":")).encode()
        except _HTTPError as exc:
            status, data = exc.status, _error(str(exc))
        except InputError as exc:
            status, data = 400, _error(str(exc))
        except Exception:
            _LOG.exception("unexpected error handling %s %s", request.method, request.path)
            status, data = 500, _error("internal server error; the server log has the traceback")
        return status, content_type, data

    async def _route(self, request: Request) -> tuple[int, Any]:
        method, path, body = request.method, request.path, request.body
        if path == "/openapi.json":
            _allow(method, "GET")
            return 200, OPENAPI
        if path == "/healthz":
            _allow(method, "GET")
            return 200, {"status": "ok"}
        team, admin = self._identify(request.authorization)
        if path == "/v1/jobs":
            if method == "POST":
                job_id = await self._committer.submit(self._submission(team, admin, body), request.client)
                return 201, {"id": job_id, "state": "pending"}
            _allow(method, "GET")
            active = b"active=1" in request.query
            jobs = self.store.list_jobs(None if admin else team, active_only=active)
            return 200, {"jobs": [self._job_view(job, estimate=False) for job in jobs]}
        if path == "/v1/arrays":
            _allow(method, "POST")
            task, indices = self._array_submission(team, admin, body)
            ids = await self._committer.submit_array(task, indices, request.client)
            return 201, {"array_id": ids[0], "ids": ids, "state": "pending"}
        match = _ARRAY_PATH.match(path)
        if match:
            return self._array(method, int(match.group(1)), team, admin)
        match = _JOB_PATH.match(path)
        if match:
            job = self.store.get(int(match.group(1)))
            if job is None or (not admin and job.spec.team != team):
                raise _HTTPError(404, f"job {match.group(1)}: no such job for team {team!r}")
            if match.group(2):
                _allow(method, "GET")
                return 200, self._logs(job.handle) if self._logs and job.handle else ""
            if method == "DELETE":
                if not self.store.request_cancel(job.id):
                    raise _HTTPError(409, f"job {job.id} has already finished ({job.state.value})")
                if self.dispatcher is not None:
                    self.dispatcher.wake()
                return 202, {"id": job.id, "cancel_requested": True}
            _allow(method, "GET")
            return 200, self._job_view(job, estimate=True)
        if path == "/v1/queues":
            _allow(method, "GET")
            return 200, {"queues": [spec.to_dict() for spec in self.store.queues()]}
        match = _QUEUE_PATH.match(path)
        if match:
            _require_admin(admin)
            if method == "PUT":
                spec = QueueSpec.from_dict({**_json(body), "name": match.group(1)})
                self.store.put_queue(spec)
                self._queues_changed()
                return 200, spec.to_dict()
            _allow(method, "DELETE")
            if not self.store.delete_queue(match.group(1)):
                raise _HTTPError(404, f"queue {match.group(1)!r} does not exist")
            self._queues_changed()
            return 200, {"deleted": match.group(1)}
        if path == "/v1/tokens":
            _allow(method, "POST")
            _require_admin(admin)
            wanted = _json(body)
            new_team = check_name(wanted.get("team"), "team")
            token = secrets.token_urlsafe(24)
            self.store.add_token(token, new_team, admin=wanted.get("admin") is True)
            return 201, {"team": new_team, "token": token, "admin": wanted.get("admin") is True}
        raise _HTTPError(404, f"no route {path!r}; see /openapi.json")

    def _array(self, method: str, array_id: int, team: str, admin: bool) -> tuple[int, Any]:
        tasks = self.store.array_tasks(array_id)
        if not tasks or (not admin and tasks[0].spec.team != team):
            raise _HTTPError(404, f"array {array_id}: no such array for team {team!r}")
        if method == "DELETE":
            cancelled = self.store.request_cancel_array(array_id)
            if not cancelled:
                raise _HTTPError(409, f"array {array_id}: every task has already finished")
            if self.dispatcher is not None:
                self.dispatcher.wake()
            return 202, {"array_id": array_id, "cancel_requested": cancelled}
        _allow(method, "GET")
        return 200, {"array_id": array_id, "tasks": [self._job_view(task, estimate=False) for task in tasks]}

    def _array_submission(self, team: str, admin: bool, body: bytes) -> tuple[JobSpec, tuple[int, ...]]:
        request = _json(body)
        unknown = sorted(set(request) - {"array", "job"})
        if unknown or "array" not in request or not isinstance(request.get("job"), dict):
            raise InputError(
                "array submission: expected {'array': '0-99', 'job': {...a job spec...}}"
                + (f"; unknown field(s) {unknown}" if unknown else "")
            )
        indices = parse_array_indices(request["array"])
        return self._submission(team, admin, request["job"]), indices

    def _submission(self, team: str, admin: bool, body: bytes | dict[str, Any]) -> JobSpec:
        request = _json(body) if isinstance(body, bytes) else body
        if not admin or "team" not in request:
            if request.get("team", team) != team:
                raise _HTTPError(403, f"team: this token belongs to team {team!r}; it cannot submit for another team")
            request["team"] = team
        spec = JobSpec.from_dict(request)
        queue = self._queue(spec.queue)
        limit = queue.nominal + queue.borrowing_limit if queue.cohort else queue.nominal
        if not spec.total.fits_in(limit):
            raise InputError(
                f"resources: {spec.workers} worker(s) of {spec.resources.to_dict()} exceed what queue "
                f"{queue.name!r} can ever hold ({limit.to_dict()}); ask for less or use another queue"
            )
        return spec

    def _queues_changed(self) -> None:
        self._queues = ({}, float("-inf"))
        if self.dispatcher is not None:
            self.dispatcher.queues_changed()

    def _queue(self, name: str) -> QueueSpec:
        queues, loaded = self._queues
        if name not in queues or time.monotonic() - loaded > _CACHE_S:
            queues = {spec.name: spec for spec in self.store.queues()}
            self._queues = (queues, time.monotonic())
        if name not in queues:
            raise InputError(f"queue: {name!r} does not exist; existing queues: {', '.join(sorted(queues)) or 'none'}")
        return queues[name]

    def _identify(self, authorization: bytes) -> tuple[str, bool]:
        token = authorization[7:].decode("latin-1").strip() if authorization[:7].lower() == b"bearer " else ""
        if not token:
            raise _HTTPError(401, "missing bearer token: send 'Authorization: Bearer TOKEN'")
        cached = self._tokens.get(token)
        if cached is None or time.monotonic() - cached[1] > _CACHE_S:
            cached = (self.store.identify(token), time.monotonic())
            self._tokens[token] = cached
        if cached[0] is None:
            raise _HTTPError(401, "unknown bearer token; ask an admin for a team token")
        return cached[0]

    def _job_view(self, job: Job, estimate: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": job.id,
            "state": job.state.value,
            "reason": job.reason,
            "attempt": job.attempt,
            "created_at": job.created_at,
            "admitted_at": job.admitted_at,
            "finished_at": job.finished_at,
            "exit_code": job.exit_code,
            "cancel_requested": job.cancel_requested,
            "array_id": job.array_id,
            "array_index": job.array_index,
            "spec": job.spec.to_dict(),
        }
        if estimate and self.dispatcher is not None:
            found = self.dispatcher.estimate(job.id)
            if found is not None:
                view["position"], view["estimated_start"] = found.position, found.start
        return view


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _HTTPError(413, f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("request body: not valid JSON") from None
    if not isinstance(value, dict):
        raise InputError("request body: expected a JSON object")
    return value


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise _HTTPError(405, f"method {method} not allowed here; use {allowed}")


def _require_admin(admin: bool) -> None:
    if not admin:
        raise _HTTPError(403, "this needs an admin token")


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


__all__ = ["JSON", "MAX_BODY_BYTES", "Request", "SchedulerAPI"]
