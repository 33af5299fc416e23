"""The OpenAPI 3.1 document of the scheduler's REST API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from kubeforge.scheduler.api_io import MAX_BODY_BYTES, RETRY_AFTER_S
from kubeforge.scheduler.logs import DEFAULT_TAIL_BYTES, MAX_LOG_BYTES
from kubeforge.scheduler.model import DEFAULT_MAX_PENDING_PER_TEAM, MAX_ARRAY_TASKS, MAX_ENV
from kubeforge.scheduler.usage import (
    DEFAULT_BUCKETS,
    DEFAULT_WINDOW_S,
    MAX_BUCKETS,
    MAX_HISTORY_JOBS,
    MAX_WINDOW_S,
    MIN_WINDOW_S,
)

_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cpu": {"oneOf": [{"type": "number"}, {"type": "string"}], "examples": ["500m", 2]},
        "memory": {"oneOf": [{"type": "number"}, {"type": "string"}], "examples": ["2Gi"]},
        "gpu": {"type": "integer", "minimum": 0},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"application/json": {"schema": schema or {"type": "object"}}}
    return {"description": description, "content": body}


_RETRY = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_UNAVAILABLE = {
    "description": f"The job store is unavailable (locked or unreachable); retry after {RETRY_AFTER_S} s. "
    "The message is generic: it never names the store.",
    "headers": _RETRY,
    "content": {"application/json": {"schema": _ERROR}},
}
_ERRORS = {
    "400": _response("The request is invalid; the message names the field.", _ERROR),
    "401": _response("Missing, unknown, revoked or expired bearer token.", _ERROR),
    "503": _UNAVAILABLE,
}
_SUBMIT_ERRORS = {
    **_ERRORS,
    "413": _response(f"The body is over {MAX_BODY_BYTES} bytes.", _ERROR),
    "429": {
        "description": "The team has as many jobs waiting in this queue as the queue allows (max_pending_per_team).",
        "headers": _RETRY,
        "content": {"application/json": {"schema": _ERROR}},
    },
}


def _query(name: str, description: str, minimum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"} | ({"minimum": minimum} if minimum is not None else {})
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_AMOUNT = {
    "type": "object",
    "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}, "gpu": {"type": "integer"}},
}
_USAGE = {
    "type": "object",
    "required": ["queues", "cohorts", "source", "at"],
    "properties": {
        "queues": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "nominal", "used", "borrowed", "share", "teams"],
                "properties": {
                    "name": {"type": "string"},
                    "cohort": {"type": "string"},
                    "nominal": _AMOUNT,
                    "borrowing_limit": _AMOUNT,
                    "used": _AMOUNT,
                    "borrowed": _AMOUNT,
                    "share": {"type": "number", "description": "Dominant share of the nominal quota in use."},
                    "teams": {"type": "object", "additionalProperties": _AMOUNT},
                },
            },
        },
        "cohorts": {"type": "object", "additionalProperties": {"type": "object"}},
        "source": {"enum": ["dispatcher", "store"]},
        "at": {"type": "number"},
    },
}
_SERIES = {"type": "array", "items": {"type": "number"}}
_HISTORY = {
    "type": "object",
    "required": ["start", "end", "bucket_s", "times", "queues", "fair_share", "truncated"],
    "properties": {
        "start": {"type": "number"},
        "end": {"type": "number"},
        "bucket_s": {"type": "number"},
        "times": _SERIES,
        "queues": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "share": _SERIES,
                    "teams": {"type": "object", "additionalProperties": _SERIES},
                },
            },
        },
        "fair_share": {"type": "object", "additionalProperties": {"type": "object"}},
        "truncated": {"type": "boolean", "description": f"True when over {MAX_HISTORY_JOBS} job records were read."},
    },
}
_JOB_ID = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_ARRAY_ID = [{"name": "array_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_QUEUE_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_TOKEN_ID = [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "kubeforge scheduler", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Resources": _RESOURCES,
            "JobSpec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["queue"],
                "properties": {
                    "name": {"type": "string"},
                    "team": {"type": "string", "description": "Defaults to the token's team."},
                    "queue": {"type": "string"},
                    "command": {"type": "array", "items": {"type": "string"}},
                    "image": {"type": "string"},
                    "training": {
                        "type": ["object", "null"],
                        "description": "A TrainConfig as JSON, checked at submit by TrainConfig itself: unknown or "
                        "missing fields and wrong types are refused with the field named (training.FIELD).",
                    },
                    "resources": {
                        "$ref": "#/components/schemas/Resources",
                        "description": "Per worker; each amount at least the queue's min_request (an amount left "
                        "out is set to it).",
                    },
                    "workers": {"type": "integer", "minimum": 1},
                    "priority": {"oneOf": [{"type": "integer"}, {"enum": ["low", "normal", "high", "critical"]}]},
                    "max_runtime_s": {"type": "number", "exclusiveMinimum": 0},
                    "retries": {"type": "integer", "minimum": 0},
                    "backoff_s": {"type": "number", "minimum": 0},
                    "depends_on": {"type": "array", "items": {"type": "integer"}},
                    "env": {
                        "type": "object",
                        "maxProperties": MAX_ENV,
                        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                        "additionalProperties": {"type": "string"},
                        "description": "The job's environment: these, its KUBEFORGE_* identity and nothing of the "
                        "scheduler's own.",
                    },
                },
            },
            "ArraySubmission": {
                "type": "object",
                "additionalProperties": False,
                "required": ["array", "job"],
                "properties": {
                    "array": {
                        "oneOf": [
                            {"type": "string", "examples": ["0-99", "0-99:10", "1,3,8-9"]},
                            {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        ],
                        "description": f"Task indices, as `sbatch --array` takes them; at most {MAX_ARRAY_TASKS}.",
                    },
                    "job": {"$ref": "#/components/schemas/JobSpec"},
                },
            },
            "Queue": {
                "type": "object",
                "additionalProperties": False,
                "required": ["nominal"],
                "properties": {
                    "name": {"type": "string"},
                    "nominal": {"$ref": "#/components/schemas/Resources"},
                    "cohort": {"type": "string"},
                    "borrowing_limit": {"$ref": "#/components/schemas/Resources"},
                    "min_request": {
                        "$ref": "#/components/schemas/Resources",
                        "description": "The least a job's worker may request here (cpu and memory never below "
                        "1m / 1Mi, so every job counts against quota).",
                    },
                    "max_pending_per_team": {
                        "type": "integer",
                        "minimum": 1,
                        "default": DEFAULT_MAX_PENDING_PER_TEAM,
                        "description": "How many of one team's jobs may wait here; more are refused with 429.",
                    },
                    "max_running_per_team": {
                        "type": "integer",
                        "minimum": 0,
                        "default": 0,
                        "description": "How many of one team's jobs may hold resources here at once (0: no cap).",
                    },
                    "max_array_tasks": {"type": "integer", "minimum": 1, "maximum": MAX_ARRAY_TASKS},
                },
            },
            "TokenRequest": {
                "type": "object",
                "additionalProperties": False,
                "required": ["team"],
                "properties": {
                    "team": {"type": "string"},
                    "admin": {"type": "boolean", "default": False},
                    "expires_in_s": {"type": ["number", "null"], "minimum": 1, "description": "null: never."},
                },
            },
            "Error": _ERROR,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job (durably recorded before the answer).",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}}},
                "responses": {"201": _response("The job's id."), **_SUBMIT_ERRORS},
            },
            "get": {
                "summary": "The team's jobs, newest first (all jobs for an admin), one page at a time: "
                "`next_before` is the `before` of the next page (null on the last).",
                "parameters": [
                    _query("limit", "Jobs per page (default 100, at most 1000).", 1),
                    _query("before", "Only jobs with a smaller id (from next_before).", 1),
                    _query("active", "1: only unfinished jobs."),
                ],
                "responses": {"200": _response("Jobs."), **_ERRORS},
            },
        },
        "/v1/jobs/{job_id}": {
            "parameters": _JOB_ID,
            "get": {
                "summary": "One job; a pending job shows its position and estimated start.",
                "responses": {"200": _response("The job."), "404": _response("No such job for this team.", _ERROR)},
            },
            "delete": {
                "summary": "Cancel a job (SIGTERM, a grace period, then SIGKILL when running).",
                "responses": {"202": _response("Cancel requested."), "409": _response("Already finished.", _ERROR)},
            },
        },
        "/v1/jobs/{job_id}/logs": {
            "parameters": _JOB_ID,
            "get": {
                "summary": f"The job's output: its last {DEFAULT_TAIL_BYTES} bytes, or with `offset` the bytes "
                f"from there (at most {MAX_LOG_BYTES} per request; page on with the next offset).",
                "parameters": [
                    _query("offset", "The first byte; absent: the tail.", 0),
                    _query("limit", f"At most this many bytes (up to {MAX_LOG_BYTES}).", 1),
                ],
                "responses": {
                    "200": {
                        "description": "Plain text.",
                        "headers": {
                            "X-Log-Offset": {"description": "Where the body starts.", "schema": {"type": "integer"}},
                            "X-Log-Size": {"description": "The log's size when read.", "schema": {"type": "integer"}},
                        },
                    }
                },
            },
        },
        "/v1/arrays": {
            "post": {
                "summary": "Submit a job array: one job per task index, each run with KUBEFORGE_ARRAY_TASK_ID set "
                "(all durably recorded before the answer).",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ArraySubmission"}}}
                },
                "responses": {
                    "201": _response("The array's id (its first task's) and every task's id."),
                    **_SUBMIT_ERRORS,
                },
            }
        },
        "/v1/arrays/{array_id}": {
            "parameters": _ARRAY_ID,
            "get": {
                "summary": "The array's spec (stored once) and its tasks by index, a page at a time: "
                "`next_after` is the `after` of the next page (null on the last).",
                "parameters": [
                    _query("after", "Only tasks with a larger index.", -1),
                    _query("limit", "Tasks per page (default and most: 1000).", 1),
                ],
                "responses": {"200": _response("Tasks."), "404": _response("No such array for this team.", _ERROR)},
            },
            "delete": {
                "summary": "Cancel every unfinished task of the array.",
                "responses": {
                    "202": _response("Cancel requested for the listed tasks."),
                    "409": _response("Every task has already finished.", _ERROR),
                },
            },
        },
        "/v1/queues": {"get": {"summary": "Every queue.", "responses": {"200": _response("Queues."), **_ERRORS}}},
        "/v1/usage": {
            "get": {
                "summary": "Each queue's usage against its nominal quota, what it borrows, and its cohort's pool, from "
                "the scheduler's accounting (jobs holding resources). Every token sees queue totals; `teams` "
                "holds only the token's own team (every team for the admin).",
                "responses": {"200": _response("Usage per queue.", _USAGE), **_ERRORS},
            }
        },
        "/v1/usage/history": {
            "get": {
                "summary": "Each queue's average dominant share of its nominal quota per time bucket (above 1 while "
                "borrowing), computed from job records, with the teams' decayed fair-share values; same token rules.",
                "parameters": [
                    _query(
                        "window_s",
                        f"Seconds back from now (default {DEFAULT_WINDOW_S}, {MIN_WINDOW_S} to {MAX_WINDOW_S}).",
                        MIN_WINDOW_S,
                    ),
                    _query("buckets", f"Time buckets (default {DEFAULT_BUCKETS}, at most {MAX_BUCKETS}).", 1),
                ],
                "responses": {"200": _response("Usage history per queue.", _HISTORY), **_ERRORS},
            }
        },
        "/v1/queues/{name}": {
            "parameters": _QUEUE_NAME,
            "put": {
                "summary": "Create or change a queue (admin).",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Queue"}}}},
                "responses": {"200": _response("The queue."), "403": _response("Not an admin token.", _ERROR)},
            },
            "delete": {"summary": "Delete a queue (admin).", "responses": {"200": _response("Deleted.")}},
        },
        "/v1/tokens": {
            "post": {
                "summary": "Create a token bound to a team, optionally expiring (admin); it is shown only here.",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}}
                },
                "responses": {"201": _response("The new token and its id."), "403": _response("Not admin.", _ERROR)},
            },
            "get": {
                "summary": "Every token's id, team, role, creation and expiry, never the token (admin); ?team=.",
                "responses": {"200": _response("Tokens."), "403": _response("Not an admin token.", _ERROR)},
            },
        },
        "/v1/tokens/{token_id}": {
            "parameters": _TOKEN_ID,
            "delete": {
                "summary": "Revoke a token (admin); it stops working at once here, within 2 s on other replicas.",
                "responses": {"200": _response("Revoked."), "404": _response("No such token.", _ERROR)},
            },
        },
        "/healthz": {
            "get": {
                "security": [],
                "summary": "Liveness: the dispatcher's loop is alive and its last step succeeded within 30 s "
                "(never touches the store).",
                "responses": {"200": _response("ok"), "503": _response("The dispatcher is dead or stalled.")},
            }
        },
        "/readyz": {
            "get": {
                "security": [],
                "summary": "Readiness: the store answers.",
                "responses": {"200": _response("ready"), "503": _UNAVAILABLE},
            }
        },
        "/openapi.json": {"get": {"security": [], "summary": "This document.", "responses": {"200": _response("")}}},
    },
}

__all__ = ["OPENAPI"]
