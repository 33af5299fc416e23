"""The `queue` launch backend: training jobs go through the kubeforge scheduler.

It implements the training launch protocol (submit, status, logs, cancel) with the
scheduler's Python client. The scheduler's URL comes from `backend_options.url` or
$KUBEFORGE_SCHEDULER_URL. The token never comes from `backend_options` (pipeline parameters
are stored in plain text with every run): it is read from $KUBEFORGE_TOKEN, or from the file
named by $KUBEFORGE_TOKEN_FILE (a mounted Kubernetes secret); `token_env` names another
variable to read it from. `queue` is required, `priority` and `max_runtime_s` are optional.
Submitting re-attaches to an unfinished job of the same name and training configuration, so a
re-run launcher does not queue a second one.
It talks to the scheduler only through `kubeforge.scheduler_client`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from kubeforge import settings
from kubeforge.errors import InputError, TrainingError
from kubeforge.launch.base import JobHandle, JobState, JobStatus, TrainingJob
from kubeforge.scheduler_client import SchedulerClient, SchedulerError

URL_ENV = settings.SCHEDULER_URL.name
TOKEN_ENV = settings.TOKEN.name
TOKEN_FILE_ENV = settings.TOKEN_FILE.name


class QueueBackend:
    """Submits training jobs to a kubeforge scheduler queue and follows them there."""

    name: ClassVar[str] = "queue"

    def __init__(self, options: dict[str, Any]) -> None:
        if options.get("token"):
            raise InputError(
                "backend_options.token: a token is not accepted as a pipeline parameter (parameters are stored in "
                f"plain text with the run); set ${TOKEN_ENV}, mount it as a file named by ${TOKEN_FILE_ENV}, or name "
                "the variable holding it with backend_options.token_env"
            )
        url = str(options.get("url") or settings.SCHEDULER_URL.read(default=""))
        token = _token(str(options.get("token_env") or TOKEN_ENV))
        missing = [
            what
            for what, value in (
                ("url (or $" + URL_ENV + ")", url),
                (f"a token (${options.get('token_env') or TOKEN_ENV} or ${TOKEN_FILE_ENV})", token),
            )
            if not value
        ]
        if not options.get("queue"):
            missing.append("queue")
        if missing:
            raise InputError(f"backend_options: the queue backend needs {', '.join(missing)}")
        self.queue = str(options["queue"])
        self.priority: object = options.get("priority", "normal")
        self.max_runtime_s = float(options.get("max_runtime_s", 86_400.0))
        self.url, self._token = url, token

    def spec(self, job: TrainingJob) -> dict[str, Any]:
        """The scheduler job spec for `job`: all its processes as one gang of per-worker resources."""
        return {
            "name": job.name,
            "queue": self.queue,
            "training": json.loads(job.config.to_json(indent=None)),
            "image": job.image,
            "workers": job.world_size,
            "resources": job.resources.to_dict(),
            "priority": self.priority,
            "max_runtime_s": self.max_runtime_s,
            "retries": job.max_restarts,
            "env": dict(job.env),
        }

    def submit(self, job: TrainingJob) -> JobHandle:
        """Queue the job, or re-attach to the unfinished one of the same name.

        The name and the run's places derive from the task's outputs, so a retried task sends the
        same configuration; an unfinished job of that name with another configuration is refused
        rather than run beside it on the same checkpoints.
        """
        spec = self.spec(job)
        with self._client() as client:
            for existing in client.jobs(active_only=True):
                shown = existing["spec"]
                if shown["name"] != job.name:
                    continue
                if shown["training"] != spec["training"]:
                    raise InputError(
                        f"job {job.name} (scheduler id {existing['id']}) is still {existing['state']} with another "
                        "training configuration: cancel it, or give this run another run_id"
                    )
                return self._handle(job.name, int(existing["id"]))
            return self._handle(job.name, client.submit(spec))

    def status(self, handle: JobHandle) -> JobStatus:
        """The scheduler's state, with its reason (queue position while pending)."""
        with self._client() as client:
            job = client.job(int(handle.id))
        message = str(job.get("reason", ""))
        if job.get("position") is not None:
            message = f"position {job['position']} in queue {self.queue}: {message}"
        if job["state"] == "failed" and job.get("exit_code") is not None:
            message = f"{message} (exit code {job['exit_code']})"
        return JobStatus(JobState(job["state"]), message)  # the scheduler's own state: one enum

    def logs(self, handle: JobHandle) -> Iterator[str]:
        """The job's output so far."""
        with self._client() as client:
            text = client.logs(int(handle.id))
        yield from text.splitlines()

    def cancel(self, handle: JobHandle) -> None:
        """Ask the scheduler to cancel the job (already finished jobs are left as they are)."""
        try:
            with self._client() as client:
                client.cancel(int(handle.id))
        except SchedulerError as exc:
            if "409" not in str(exc):
                raise

    def suspend(self, handle: JobHandle) -> None:
        """The scheduler preempts on its own (SIGTERM, checkpoint, requeue); its API offers no suspend."""
        raise TrainingError(f"queue job {handle.name}: the scheduler decides preemption; cancel it to stop it")

    def _client(self) -> SchedulerClient:
        return SchedulerClient(self.url, self._token)

    def _handle(self, name: str, job_id: int) -> JobHandle:
        return JobHandle(self.name, name, str(job_id), {"url": self.url})


def _token(variable: str) -> str:
    """The token from `variable`, else from the file named by $KUBEFORGE_TOKEN_FILE; '' when neither is set."""
    found = os.environ.get(variable, "").strip()
    path = settings.TOKEN_FILE.read()
    if found or not path:
        return found
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise InputError(f"${TOKEN_FILE_ENV} names {path!r}, which cannot be read ({exc.strerror})") from None


__all__ = ["TOKEN_ENV", "TOKEN_FILE_ENV", "URL_ENV", "QueueBackend"]
