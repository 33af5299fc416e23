"""Submitting a compiled pipeline to a Kubeflow Pipelines endpoint through kfp.Client (API v2beta1).

The bearer token comes from the environment (`KUBEFORGE_KFP_TOKEN` unless told otherwise). The
endpoint is probed first, so an unreachable host or a refused token is reported before anything
is created; if the run cannot be created, an experiment made for it is deleted again.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any

from kubeforge import settings
from kubeforge.errors import InputError, SubmitError
from kubeforge.submit.base import Echo, PreparedPipeline, RunStatus, Submission, follow_run

TOKEN_ENV = settings.KFP_TOKEN.name
"""The environment variable holding the bearer token for the KFP endpoint (when it needs one)."""

_SUCCEEDED = "SUCCEEDED"
_FINISHED = (_SUCCEEDED, "FAILED", "SKIPPED", "CANCELED", "CANCELING")
_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KfpOptions:
    """Where and how to submit: endpoint, experiment, run name, schedule and run settings."""

    host: str
    experiment: str = "Default"
    run_name: str = ""
    schedule: str = ""
    token_env: str = TOKEN_ENV
    namespace: str = ""
    service_account: str = ""
    pipeline_root: str = ""
    enable_caching: bool | None = None


def cron_expression(schedule: str) -> str:
    """KFP's six-field cron (seconds first) from a five- or six-field expression."""
    fields = schedule.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise InputError(
        f"--schedule {schedule!r}: expected a cron expression of 5 fields (minute hour day month weekday) "
        "or 6 (with seconds first), e.g. '0 3 * * *'"
    )


def submit_to_kfp(
    prepared: PreparedPipeline, options: KfpOptions, echo: Echo, wait: bool = False, poll_s: float = 5.0
) -> Submission:
    """Create a run (or, with a schedule, a recurring run) of `prepared` on the KFP endpoint."""
    if not options.host.startswith(("http://", "https://")):
        raise InputError(f"--kfp {options.host!r}: give the endpoint's URL, e.g. http://localhost:8080")
    if wait and options.schedule:
        raise InputError("--wait follows one run; it does not apply to --schedule")
    cron = cron_expression(options.schedule) if options.schedule else ""
    host = options.host.rstrip("/")
    token = os.environ.get(options.token_env) or None
    _probe(host, token, options.token_env)
    client = _client(host, token)
    experiment_id, created_experiment = _experiment(client, options)
    try:
        if cron:
            recurring = client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=options.run_name or prepared.name,
                cron_expression=cron,
                params=prepared.params,
                pipeline_package_path=str(prepared.package),
                **_run_settings(options),
            )
            echo(f"scheduled {prepared.name} ({cron}) as recurring run {recurring.recurring_run_id}")
            return Submission("kfp", "recurring run", recurring.recurring_run_id, f"{host}/#/recurringruns")
        run = client.run_pipeline(
            experiment_id=experiment_id,
            job_name=options.run_name or prepared.name,
            pipeline_package_path=str(prepared.package),
            params=prepared.params,
            **_run_settings(options),
        )
    except Exception as exc:
        if created_experiment:
            client.delete_experiment(experiment_id)
        raise SubmitError(f"KFP at {host} refused the run of {prepared.name}: {_api_message(exc)}") from exc
    url = f"{host}/#/runs/details/{run.run_id}"
    echo(f"submitted {prepared.name} as run {run.run_id}: {url}")
    final = follow_run(lambda: _run_status(client, run.run_id), echo, interval_s=poll_s) if wait else None
    return Submission("kfp", "run", run.run_id, url, final)


def _run_settings(options: KfpOptions) -> dict[str, Any]:
    return {
        "pipeline_root": options.pipeline_root or None,
        "enable_caching": options.enable_caching,
        "service_account": options.service_account or None,
    }


def _probe(host: str, token: str | None, token_env: str) -> None:
    request = urllib.request.Request(f"{host}/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            hint = f"the token in ${token_env} was not accepted" if token else f"set ${token_env} to a bearer token"
            raise SubmitError(f"KFP at {host} refused the credentials (HTTP {exc.code}): {hint}") from None
        raise SubmitError(f"KFP at {host} is not healthy: /apis/v2beta1/healthz answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SubmitError(
            f"cannot reach KFP at {host} ({reason}); check --kfp, and port-forward the ml-pipeline-ui service "
            "if the endpoint is inside a cluster"
        ) from None


def _client(host: str, token: str | None) -> Any:
    import kfp

    with warnings.catch_warnings():
        # kfp.Client warns on every construction that it needs a v2 backend, which is what we target.
        warnings.filterwarnings(
            "ignore", message="This client only works with Kubeflow Pipeline v2", category=FutureWarning
        )
        return kfp.Client(host=host, existing_token=token)


def _experiment(client: Any, options: KfpOptions) -> tuple[str, bool]:
    namespace = options.namespace or None
    try:
        existing = client.get_experiment(experiment_name=options.experiment, namespace=namespace)
        return str(existing.experiment_id), False
    except ValueError as exc:
        if not str(exc).startswith("No experiment is found"):
            raise SubmitError(f"--experiment {options.experiment!r}: {exc}") from exc
    created = client.create_experiment(name=options.experiment, namespace=namespace)
    return str(created.experiment_id), True


def _run_status(client: Any, run_id: str) -> RunStatus:
    run = client.get_run(run_id)
    state = str(run.state or "PENDING")
    details = run.run_details.task_details if run.run_details and run.run_details.task_details else []
    tasks = {str(task.display_name): str(task.state) for task in details if task.display_name}
    error = str(run.error.message) if run.error and run.error.message else ""
    return RunStatus(state, tasks, finished=state in _FINISHED, succeeded=state == _SUCCEEDED, error=error)


def _api_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return str(body)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["TOKEN_ENV", "KfpOptions", "cron_expression", "submit_to_kfp"]
