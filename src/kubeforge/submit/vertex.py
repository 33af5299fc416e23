"""Submitting a compiled pipeline to Vertex AI Pipelines through aiplatform.PipelineJob.

Credentials are Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, or
`gcloud auth application-default login`); they are resolved, and the settings checked, before
the job is created. `api_endpoint` points the client at a regional or private endpoint (a full
URL such as `http://127.0.0.1:8080` is used as given, over REST).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubeforge.errors import InputError, SubmitError
from kubeforge.submit.base import Echo, PreparedPipeline, RunStatus, Submission, follow_run

_SUCCEEDED = "PIPELINE_STATE_SUCCEEDED"
_FINISHED = (_SUCCEEDED, "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")


@dataclass(frozen=True)
class VertexOptions:
    """Project, region, pipeline root and the job's settings."""

    project: str
    region: str
    pipeline_root: str
    display_name: str = ""
    service_account: str = ""
    network: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    enable_caching: bool | None = None
    api_endpoint: str = ""


def submit_to_vertex(
    prepared: PreparedPipeline, options: VertexOptions, echo: Echo, wait: bool = False, poll_s: float = 10.0
) -> Submission:
    """Create a PipelineJob for `prepared` on Vertex AI Pipelines; with `wait`, follow it to the end."""
    _check(options)
    credentials = _credentials()
    from google.cloud import aiplatform

    aiplatform.init(
        project=options.project,
        location=options.region,
        credentials=credentials,
        **({"api_endpoint": options.api_endpoint, "api_transport": "rest"} if options.api_endpoint else {}),
    )
    try:
        job = _pipeline_job(aiplatform, prepared, options, credentials)
    except ValueError as exc:  # aiplatform's own checks of the job id, labels and template
        raise InputError(f"Vertex AI pipeline job for {prepared.name}: {exc}") from exc
    try:
        job.submit(service_account=options.service_account or None, network=options.network or None)
    except Exception as exc:
        raise SubmitError(f"Vertex AI refused the pipeline job for {prepared.name}: {exc}") from exc
    url = (
        f"https://console.cloud.google.com/vertex-ai/locations/{options.region}/pipelines/runs/{job.job_id}"
        f"?project={options.project}"
    )
    echo(f"submitted {prepared.name} as Vertex AI pipeline job {job.resource_name}: {url}")
    final = follow_run(lambda: _job_status(job), echo, interval_s=poll_s) if wait else None
    return Submission("vertex", "pipeline job", str(job.resource_name), url, final)


def _pipeline_job(aiplatform: Any, prepared: PreparedPipeline, options: VertexOptions, credentials: Any) -> Any:
    return aiplatform.PipelineJob(
        display_name=options.display_name or prepared.name,
        template_path=str(prepared.package),
        job_id=f"{prepared.name}-{uuid.uuid4().hex[:12]}",
        pipeline_root=options.pipeline_root,
        parameter_values=prepared.params,
        enable_caching=options.enable_caching,
        labels=options.labels or None,
        project=options.project,
        location=options.region,
        credentials=credentials,
    )


def _check(options: VertexOptions) -> None:
    if not options.project:
        raise InputError("--project is required with --vertex: the Google Cloud project that runs the job")
    if not _REGION.match(options.region):
        raise InputError(f"--region {options.region!r}: give a Vertex AI region such as us-central1")
    if not options.pipeline_root.startswith("gs://"):
        raise InputError(
            f"--pipeline-root {options.pipeline_root!r}: Vertex AI needs a gs://bucket/path for task outputs"
        )


def _credentials() -> Any:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as exc:
        raise SubmitError(
            f"no Google Cloud credentials ({exc}); set GOOGLE_APPLICATION_CREDENTIALS to a key file or run "
            "`gcloud auth application-default login`"
        ) from None
    return credentials


def _job_status(job: Any) -> RunStatus:
    state = job.state.name if job.state is not None else "PIPELINE_STATE_UNSPECIFIED"
    tasks = {str(task.task_name): task.state.name for task in job.task_details if task.task_name}
    error = str(job.gca_resource.error.message or "")
    return RunStatus(state, tasks, finished=state in _FINISHED, succeeded=state == _SUCCEEDED, error=error)


__all__ = ["VertexOptions", "submit_to_vertex"]
