"""The OpenAPI 3.1 document of the scheduler's REST API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from kubeforge.scheduler.model import MAX_ARRAY_TASKS

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


_ERRORS = {
    "400": _response("The request is invalid; the message names the field.", _ERROR),
    "401": _response("Missing or unknown bearer token.", _ERROR),
}
_JOB_ID = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_ARRAY_ID = [{"name": "array_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_QUEUE_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]

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
                    "training": {"type": ["object", "null"], "description": "A TrainConfig as JSON."},
                    "resources": {"$ref": "#/components/schemas/Resources"},
                    "workers": {"type": "integer", "minimum": 1},
                    "priority": {"oneOf": [{"type": "integer"}, {"enum": ["low", "normal", "high", "critical"]}]},
                    "max_runtime_s": {"type": "number", "exclusiveMinimum": 0},
                    "retries": {"type": "integer", "minimum": 0},
                    "backoff_s": {"type": "number", "minimum": 0},
                    "depends_on": {"type": "array", "items": {"type": "integer"}},
                    "env": {"type": "object", "additionalProperties": {"type": "string"}},
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
                "required": ["nominal"],
                "properties": {
                    "name": {"type": "string"},
                    "nominal": {"$ref": "#/components/schemas/Resources"},
                    "cohort": {"type": "string"},
                    "borrowing_limit": {"$ref": "#/components/schemas/Resources"},
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
                "responses": {"201": _response("The job's id."), **_ERRORS},
            },
            "get": {
                "summary": "The team's jobs, newest first (all jobs for an admin); ?active=1 for unfinished ones.",
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
            "get": {"summary": "The job's output so far.", "responses": {"200": {"description": "Plain text."}}},
        },
        "/v1/arrays": {
            "post": {
                "summary": "Submit a job array: one job per task index, each run with KUBEFORGE_ARRAY_TASK_ID set "
                "(all durably recorded before the answer).",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ArraySubmission"}}}
                },
                "responses": {"201": _response("The array's id (its first task's) and every task's id."), **_ERRORS},
            }
        },
        "/v1/arrays/{array_id}": {
            "parameters": _ARRAY_ID,
            "get": {
                "summary": "The array's tasks by index.",
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
                "summary": "Create a token bound to a team (admin).",
                "responses": {"201": _response("The new token."), "403": _response("Not an admin token.", _ERROR)},
            }
        },
        "/healthz": {"get": {"security": [], "summary": "Liveness.", "responses": {"200": _response("ok")}}},
        "/openapi.json": {"get": {"security": [], "summary": "This document.", "responses": {"200": _response("")}}},
    },
}

__all__ = ["OPENAPI"]
