"""The scheduler's REST API: `respond` answers one `Request` (served by `http_server`), and the same
object is a plain ASGI application for any ASGI server; every route but the docs, the probes and the
dashboard's static files (/ui/, which ask for a token in the page) needs a bearer token.

A team token sees and cancels only its team's jobs (another team's job answers 404); an admin
token sees every job and manages queues and tokens. The OpenAPI document is served at
/openapi.json. Store calls run in a small thread pool, never on the event loop, so a slow or
locked store cannot stall other requests or the probes; when the store is unavailable the
answer is 503 with Retry-After and a generic message (never the store's URL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubeforge.errors import InputError
from kubeforge.scheduler import usage
from kubeforge.scheduler.api_io import (
    JSON,
    MAX_BODY_BYTES,
    TEXT,
    HTTPError,
    Receive,
    Request,
    Response,
    allow,
    error_response,
    job_view,
    parse_json,
    parse_query,
    query_int,
    read_body,
    require_admin,
)
from kubeforge.scheduler.auth import TokenCache, bearer_token
from kubeforge.scheduler.dashboard import dashboard_response, is_dashboard_path
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.group_commit import GroupCommitter
from kubeforge.scheduler.health import dispatcher_health
from kubeforge.scheduler.logs import DEFAULT_TAIL_BYTES, EMPTY, MAX_LOG_BYTES, LogReader
from kubeforge.scheduler.model import Job, JobSpec, QueueSpec, check_name, parse_array_indices
from kubeforge.scheduler.openapi import OPENAPI
from kubeforge.scheduler.store.base import SqlStore, StoreUnavailable

Scope = Mapping[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
T = TypeVar("T")

_CACHE_S = 2.0
_PENDING_CACHE_S = 1.0
STORE_THREADS = 8
STORE_CALL_TIMEOUT_S = 5.0
"""A store call still running after this answers 503 (the thread finishes in the background)."""
READY_TIMEOUT_S = 1.5
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LIFETIME_S = 10 * 366 * 86400
_JOB_PATH = re.compile(r"^/v1/jobs/(\d{1,18})(/logs)?$")
_ARRAY_PATH = re.compile(r"^/v1/arrays/(\d{1,18})$")
_QUEUE_PATH = re.compile(r"^/v1/queues/([^/]{1,63})$")
_TOKEN_PATH = re.compile(r"^/v1/tokens/([0-9a-f]{1,64})$")
_LOG = logging.getLogger("kubeforge.scheduler.api")


class SchedulerAPI:
    """Routes requests to the store; with an in-process dispatcher, submissions wake it and
    pending jobs show their position and estimated start. Submissions are group-committed:
    concurrent ones share a transaction and each is answered only after it is recorded.
    `logs` reads a byte range of a launch's output (a backend's `log_range`; offset None: the tail)."""

    def __init__(self, store: SqlStore, dispatcher: Dispatcher | None = None, logs: LogReader | None = None):
        self.store = store
        self.dispatcher = dispatcher
        self._logs = logs
        self.token_cache = TokenCache()
        """Valid tokens seen lately (bounded; unknown tokens are never cached)."""
        self._queues: tuple[dict[str, QueueSpec], float] = ({}, float("-inf"))
        self._pending: dict[tuple[str, str], tuple[int, float]] = {}
        self._pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="kubeforge-api-store")
        self._committer = GroupCommitter(store, on_commit=dispatcher.wake if dispatcher is not None else None)

    def close(self) -> None:
        """Record what is still queued for the store and stop the writer and the store threads (waiting for
        the calls under way, so that the store can be closed after this)."""
        self._committer.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

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
            body = await read_body(receive)
        except HTTPError as exc:
            response = exc.response()
        else:
            peer = scope.get("client")
            client = f"{peer[0]}:{peer[1]}" if peer else ""
            query = scope.get("query_string", b"")
            response = await self.respond(Request(scope["method"], scope["path"], query, authorization, body, client))
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            *response.headers,
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def respond(self, request: Request) -> Response:
        """Answer one request; errors become 4xx (or 503 while the store is unavailable) with a JSON message."""
        try:
            status, payload = await self._route(request)
        except HTTPError as exc:
            return exc.response()
        except InputError as exc:
            return error_response(400, str(exc))
        except StoreUnavailable as exc:
            _LOG.warning("%s %s: store unavailable: %s", request.method, request.path, exc.detail)
            return error_response(503, str(exc))
        except Exception:
            _LOG.exception("unexpected error handling %s %s", request.method, request.path)
            return error_response(500, "internal server error; the server log has the traceback")
        if isinstance(payload, Response):
            return payload
        return Response(status, json.dumps(payload, separators=(",", ":")).encode())

    async def _call(self, function: Callable[..., T], *args: Any, timeout_s: float = STORE_CALL_TIMEOUT_S) -> T:
        """Run a blocking (store) call in the pool; StoreUnavailable when it takes longer than `timeout_s`."""
        future = asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise StoreUnavailable(f"{getattr(function, '__name__', 'a store call')} took over {timeout_s} s") from None

    async def _route(self, request: Request) -> tuple[int, Any]:
        method, path, body = request.method, request.path, request.body
        if path == "/openapi.json":
            allow(method, "GET")
            return 200, OPENAPI
        if path == "/healthz":
            allow(method, "GET")
            status, report = dispatcher_health(self.dispatcher)
            return status, report
        if path == "/readyz":
            allow(method, "GET")
            await self._call(self.store.ping, timeout_s=READY_TIMEOUT_S)
            return 200, {"status": "ready"}
        if is_dashboard_path(path):
            return 200, dashboard_response(method, path)
        team, admin = await self._identify(request.authorization)
        query = parse_query(request.query)
        if path == "/v1/jobs":
            if method == "POST":
                spec = await self._submission(team, admin, parse_json(body), tasks=1)
                job_id = await self._committer.submit(spec, request.client)
                return 201, {"id": job_id, "state": "pending"}
            allow(method, "GET")
            return 200, await self._list_jobs(team, admin, query)
        if path == "/v1/arrays":
            allow(method, "POST")
            task, indices = await self._array_submission(team, admin, body)
            ids = await self._committer.submit_array(task, indices, request.client)
            return 201, {"array_id": ids[0], "ids": ids, "state": "pending"}
        match = _ARRAY_PATH.match(path)
        if match:
            return await self._array(method, int(match.group(1)), team, admin, query)
        match = _JOB_PATH.match(path)
        if match:
            return await self._job(method, int(match.group(1)), bool(match.group(2)), team, admin, query)
        if path == "/v1/queues":
            allow(method, "GET")
            return 200, {"queues": [spec.to_dict() for spec in await self._call(self.store.queues)]}
        if path in ("/v1/usage", "/v1/usage/history"):
            allow(method, "GET")
            return 200, await self._usage(path.endswith("/history"), team, admin, query)
        match = _QUEUE_PATH.match(path)
        if match:
            require_admin(admin)
            return await self._queue_change(method, match.group(1), body)
        if path == "/v1/tokens" or _TOKEN_PATH.match(path):
            require_admin(admin)
            return await self._token_route(method, path, body, query)
        raise HTTPError(404, f"no route {path!r}; see /openapi.json")

    async def _usage(self, history: bool, team: str, admin: bool, query: dict[str, str]) -> dict[str, Any]:
        """Per-queue usage now, or over a window (?window_s=, ?buckets=); the token rules are usage.py's."""
        queues = await self._call(self.store.queues)
        if not history:
            holding, source = await self._call(usage.holding_jobs, self.dispatcher, self.store)
            return {**usage.usage_report(queues, holding, team, admin), "source": source, "at": time.time()}
        window_s = query_int(query, "window_s", usage.DEFAULT_WINDOW_S, usage.MIN_WINDOW_S, usage.MAX_WINDOW_S)
        buckets = query_int(query, "buckets", usage.DEFAULT_BUCKETS, 1, usage.MAX_BUCKETS)
        end = time.time()
        start = end - float(window_s or usage.DEFAULT_WINDOW_S)
        jobs = await self._call(self.store.held_since, start, usage.MAX_HISTORY_JOBS)
        fair_share = await self._call(self.store.fair_share)
        window = (start, end, buckets or usage.DEFAULT_BUCKETS)
        answer = usage.usage_history(queues, jobs, fair_share, window, team, admin)
        return {**answer, "truncated": len(jobs) >= usage.MAX_HISTORY_JOBS}

    # -- jobs and arrays --------------------------------------------------------------------

    async def _list_jobs(self, team: str, admin: bool, query: dict[str, str]) -> dict[str, Any]:
        limit = query_int(query, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE) or PAGE_SIZE
        before = query_int(query, "before", None, 1, 2**62)
        active = query.get("active") in ("1", "true")
        jobs = await self._call(self.store.list_jobs, None if admin else team, active, limit, before)
        following = jobs[-1].id if len(jobs) == limit else None
        return {"jobs": [job_view(job) for job in jobs], "next_before": following}

    async def _job(
        self, method: str, job_id: int, logs: bool, team: str, admin: bool, query: dict[str, str]
    ) -> tuple[int, Any]:
        job = await self._call(self.store.get, job_id)
        if job is None or (not admin and job.spec.team != team):
            raise HTTPError(404, f"job {job_id}: no such job for team {team!r}")
        if logs:
            allow(method, "GET")
            return 200, await self._read_logs(job, query)
        if method == "DELETE":
            if not await self._call(self.store.request_cancel, job.id):
                raise HTTPError(409, f"job {job.id} has already finished ({job.state.value})")
            self._wake()
            return 202, {"id": job.id, "cancel_requested": True}
        allow(method, "GET")
        view = job_view(job)
        if self.dispatcher is not None:
            found = await self._call(self.dispatcher.estimate, job.id)
            if found is not None:
                view["position"], view["estimated_start"] = found.position, found.start
                view["reason"] = found.reason or view["reason"]
        return 200, view

    async def _read_logs(self, job: Job, query: dict[str, str]) -> Response:
        offset = query_int(query, "offset", None, 0, 2**62)
        default = DEFAULT_TAIL_BYTES if offset is None else MAX_LOG_BYTES
        limit = query_int(query, "limit", default, 1, MAX_LOG_BYTES) or default
        found = (
            EMPTY if self._logs is None or not job.handle else await self._call(self._logs, job.handle, offset, limit)
        )
        headers = ((b"x-log-offset", str(found.start).encode()), (b"x-log-size", str(found.size).encode()))
        return Response(200, found.data, TEXT, headers)

    async def _array(
        self, method: str, array_id: int, team: str, admin: bool, query: dict[str, str]
    ) -> tuple[int, Any]:
        first = await self._call(self.store.get, array_id)
        if first is None or first.array_id != array_id or (not admin and first.spec.team != team):
            raise HTTPError(404, f"array {array_id}: no such array for team {team!r}")
        if method == "DELETE":
            cancelled = await self._call(self.store.request_cancel_array, array_id)
            if not cancelled:
                raise HTTPError(409, f"array {array_id}: every task has already finished")
            self._wake()
            return 202, {"array_id": array_id, "cancel_requested": cancelled}
        allow(method, "GET")
        limit = query_int(query, "limit", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE) or MAX_PAGE_SIZE
        after = query_int(query, "after", -1, -1, 2**62)
        tasks = await self._call(self.store.array_tasks, array_id, after, limit)
        return 200, {
            "array_id": array_id,
            "spec": first.spec.to_dict(),
            "tasks": [job_view(task, with_spec=False) for task in tasks],
            "next_after": tasks[-1].array_index if len(tasks) == limit else None,
        }

    async def _array_submission(self, team: str, admin: bool, body: bytes) -> tuple[JobSpec, tuple[int, ...]]:
        request = parse_json(body)
        unknown = sorted(set(request) - {"array", "job"})
        if unknown or "array" not in request or not isinstance(request.get("job"), dict):
            raise InputError(
                "array submission: expected {'array': '0-99', 'job': {...a job spec...}}"
                + (f"; unknown field(s) {unknown}" if unknown else "")
            )
        indices = parse_array_indices(request["array"])
        return await self._submission(team, admin, request["job"], tasks=len(indices)), indices

    async def _submission(self, team: str, admin: bool, request: dict[str, Any], tasks: int) -> JobSpec:
        """The validated spec of `tasks` new jobs, within the queue's limits and the team's caps."""
        if not admin or "team" not in request:
            if request.get("team", team) != team:
                raise HTTPError(403, f"team: this token belongs to team {team!r}; it cannot submit for another team")
            request["team"] = team
        spec = JobSpec.from_dict(request)
        queue = await self._queue(spec.queue)
        spec = queue.fill_request(spec, request.get("resources"))
        queue.check_request(spec)
        if not spec.total.fits_in(queue.quota_limit if queue.cohort else queue.nominal):
            limit = queue.quota_limit if queue.cohort else queue.nominal
            raise InputError(
                f"resources: {spec.workers} worker(s) of {spec.resources.to_dict()} exceed what queue "
                f"{queue.name!r} can ever hold ({limit.to_dict()}); ask for less or use another queue"
            )
        if tasks > 1 and tasks > queue.max_array_tasks:
            raise InputError(
                f"array: {tasks} tasks; queue {queue.name!r} takes arrays of at most {queue.max_array_tasks}"
            )
        await self._count_pending(spec, queue, tasks)
        return spec

    async def _count_pending(self, spec: JobSpec, queue: QueueSpec, adding: int) -> None:
        """Refuse (429) what would take the team past the queue's cap on pending jobs. Far from the cap the
        count is read from the store at most every second and kept up to date with this process's
        submissions; a refusal is always decided on a fresh count."""
        key = (spec.team, spec.queue)
        count, loaded = self._pending.get(key, (0, float("-inf")))
        stale = time.monotonic() - loaded > _PENDING_CACHE_S
        if stale or count + adding > queue.max_pending_per_team:
            count, loaded = await self._call(self.store.count_pending, *key), time.monotonic()
            if len(self._pending) > 4096:
                self._pending.clear()
        if count + adding > queue.max_pending_per_team:
            raise HTTPError(
                429,
                f"team {spec.team!r} has {count} job(s) waiting in queue {queue.name!r}, which takes at most "
                f"{queue.max_pending_per_team} per team; wait for some to start or cancel some",
            )
        self._pending[key] = (count + adding, loaded)

    # -- queues and tokens ------------------------------------------------------------------

    async def _queue_change(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        if method == "PUT":
            spec = QueueSpec.from_dict({**parse_json(body), "name": name})
            await self._call(self.store.put_queue, spec)
            self._queues_changed()
            return 200, spec.to_dict()
        allow(method, "PUT", "DELETE")
        if not await self._call(self.store.delete_queue, name):
            raise HTTPError(404, f"queue {name!r} does not exist")
        self._queues_changed()
        return 200, {"deleted": name}

    async def _token_route(self, method: str, path: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        if path != "/v1/tokens":
            allow(method, "DELETE")
            token_id = path.rsplit("/", 1)[1]
            if not await self._call(self.store.revoke_token, token_id):
                raise HTTPError(404, f"token {token_id!r} does not exist (GET /v1/tokens lists their ids)")
            self.token_cache.clear()
            return 200, {"revoked": token_id}
        if method == "GET":
            team = check_name(query["team"], "?team") if "team" in query else None
            return 200, {"tokens": [info.to_dict() for info in await self._call(self.store.list_tokens, team)]}
        allow(method, "GET", "POST")
        wanted = parse_json(body)
        unknown = sorted(set(wanted) - {"team", "admin", "expires_in_s"})
        if unknown:
            raise InputError(f"token: unknown field(s) {unknown}; valid: team, admin, expires_in_s")
        new_team = check_name(wanted.get("team"), "team")
        lifetime = wanted.get("expires_in_s")
        if lifetime is not None and (
            isinstance(lifetime, bool)
            or not isinstance(lifetime, int | float)
            or not 1 <= lifetime <= MAX_TOKEN_LIFETIME_S
        ):
            raise InputError(f"expires_in_s: expected seconds from 1 to {MAX_TOKEN_LIFETIME_S}, or null for no expiry")
        expires_at = time.time() + lifetime if lifetime is not None else None
        token, is_admin = secrets.token_urlsafe(24), wanted.get("admin") is True
        token_id = await self._call(self.store.add_token, token, new_team, is_admin, expires_at)
        return 201, {"id": token_id, "team": new_team, "token": token, "admin": is_admin, "expires_at": expires_at}

    # -- helpers ----------------------------------------------------------------------------

    def _wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def _queues_changed(self) -> None:
        self._queues = ({}, float("-inf"))
        if self.dispatcher is not None:
            self.dispatcher.queues_changed()

    async def _queue(self, name: str) -> QueueSpec:
        queues, loaded = self._queues
        if name not in queues or time.monotonic() - loaded > _CACHE_S:
            queues = {spec.name: spec for spec in await self._call(self.store.queues)}
            self._queues = (queues, time.monotonic())
        if name not in queues:
            raise InputError(f"queue: {name!r} does not exist; existing queues: {', '.join(sorted(queues)) or 'none'}")
        return queues[name]

    async def _identify(self, authorization: bytes) -> tuple[str, bool]:
        token = bearer_token(authorization)
        if not token:
            raise HTTPError(401, "missing bearer token: send 'Authorization: Bearer TOKEN'")
        found = self.token_cache.get(token)
        if found is None:
            found = await self._call(self.store.identify, token)
            if found is None:
                raise HTTPError(401, "unknown bearer token (or revoked, or expired); ask an admin for a team token")
            self.token_cache.put(token, found)
        return found


__all__ = ["JSON", "MAX_BODY_BYTES", "Request", "Response", "SchedulerAPI"]
