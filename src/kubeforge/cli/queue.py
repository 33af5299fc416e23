"""`kubeforge queue`: submit, list, show, cancel and read logs of scheduled jobs; manage queues; serve."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from kubeforge import settings
from kubeforge.scheduler_client import SchedulerClient

_URL = click.option(
    "--url", envvar=settings.SCHEDULER_URL.name, default=settings.SCHEDULER_URL.default, show_default=True
)
_TOKEN = click.option("--token", envvar=settings.TOKEN.name, required=True, help="Bearer token (or $KUBEFORGE_TOKEN).")


@click.group()
def queue() -> None:
    """Queue training jobs on the kubeforge scheduler."""


@queue.command()
@_URL
@_TOKEN
@click.option("--queue", "queue_name", required=True, help="The queue to submit to.")
@click.option("--cpu", default="1", show_default=True, help="CPU per worker (2, 500m).")
@click.option("--memory", default="512Mi", show_default=True, help="Memory per worker (2Gi).")
@click.option("--gpu", default=0, show_default=True, help="GPUs per worker.")
@click.option("--workers", default=1, show_default=True, help="Workers, admitted all or none.")
@click.option("--priority", default="normal", show_default=True, help="low, normal, high, critical or a number.")
@click.option("--max-runtime", "max_runtime_s", default=3600.0, show_default=True, help="Seconds before it is stopped.")
@click.option("--retries", default=0, show_default=True, help="Retries after a failure, with exponential backoff.")
@click.option("--after", "depends_on", multiple=True, type=int, help="Start after this job succeeds; repeatable.")
@click.option("--name", default="", help="A display name.")
@click.option(
    "--array",
    "array",
    default="",
    help="Submit one job per task index (0-99, 0-99:10, 1,3,8-9), each run with KUBEFORGE_ARRAY_TASK_ID set.",
)
@click.argument("command", nargs=-1, required=True)
def submit(
    url: str, token: str, queue_name: str, cpu: str, memory: str, gpu: int, priority: str, array: str, **fields: Any
) -> None:
    """Submit COMMAND (after --) as a job; prints its id (with --array, the array's id)."""
    spec: dict[str, Any] = {
        "queue": queue_name,
        "resources": {"cpu": cpu, "memory": memory, "gpu": gpu},
        "priority": int(priority) if priority.lstrip("-").isdigit() else priority,
        **fields,
        "command": list(fields["command"]),
        "depends_on": list(fields["depends_on"]),
    }
    with SchedulerClient(url, token) as client:
        click.echo(client.submit_array(spec, array)[0] if array else client.submit(spec))


@queue.command("list")
@_URL
@_TOKEN
@click.option("--all", "show_all", is_flag=True, help="Finished jobs too.")
@click.option("--watch", is_flag=True, help="Redraw the table every second until interrupted.")
@click.option("--limit", default=100, show_default=True, help="Show at most this many jobs.")
def list_jobs(url: str, token: str, show_all: bool, watch: bool, limit: int) -> None:
    """A table of the team's jobs, newest first."""
    with SchedulerClient(url, token) as client:
        while True:
            table = _table(client.jobs(active_only=not show_all, limit=limit))
            if not watch:
                click.echo(table)
                return
            click.clear()
            click.echo(f"{time.strftime('%H:%M:%S')}  (ctrl-c to stop)\n{table}")
            time.sleep(1.0)


@queue.command()
@_URL
@_TOKEN
@click.argument("job_id", type=int)
def show(url: str, token: str, job_id: int) -> None:
    """One job: state, reason, and for a pending job its position and estimated start."""
    with SchedulerClient(url, token) as client:
        job = client.job(job_id)
    for key in ("id", "array_id", "array_index", "state", "reason", "attempt", "exit_code", "position"):
        if job.get(key) not in (None, ""):
            click.echo(f"{key:<16}{job[key]}")
    if job.get("estimated_start") is not None:
        click.echo(
            f"{'estimated_start':<16}{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job['estimated_start']))}"
        )
    click.echo(f"{'command':<16}{' '.join(job['spec']['command']) or '(training)'}")


@queue.command()
@_URL
@_TOKEN
@click.option("--array", "whole_array", is_flag=True, help="JOB_ID is an array's id: cancel all its unfinished tasks.")
@click.argument("job_id", type=int)
def cancel(url: str, token: str, whole_array: bool, job_id: int) -> None:
    """Cancel a job (running jobs get SIGTERM, then SIGKILL after the grace period)."""
    with SchedulerClient(url, token) as client:
        if whole_array:
            cancelled = client.cancel_array(job_id)
            click.echo(f"cancel requested for {len(cancelled)} task(s) of array {job_id}")
            return
        client.cancel(job_id)
    click.echo(f"cancel requested for job {job_id}")


@queue.command()
@_URL
@_TOKEN
@click.option("--all", "whole", is_flag=True, help="The whole output, streamed in chunks (default: its tail).")
@click.option("--offset", type=click.IntRange(min=0), default=None, help="Start at this byte of the output.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many bytes.")
@click.argument("job_id", type=int)
def logs(url: str, token: str, whole: bool, offset: int | None, limit: int | None, job_id: int) -> None:
    """The tail of the job's output so far; --all or --offset for the rest."""
    with SchedulerClient(url, token) as client:
        if whole:
            for chunk in client.log_chunks(job_id, offset or 0):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        click.echo(client.logs(job_id, offset, limit), nl=False)


@queue.group()
def tokens() -> None:
    """Create, list and revoke bearer tokens (admin token)."""


@tokens.command("create")
@_URL
@_TOKEN
@click.option("--team", required=True, help="The team the new token acts for.")
@click.option("--admin", "as_admin", is_flag=True, help="An admin token (manages queues and tokens).")
@click.option("--expires-in", "expires_in_s", type=float, default=None, help="Seconds until it expires.")
def create_token(url: str, token: str, team: str, as_admin: bool, expires_in_s: float | None) -> None:
    """Print a new token for TEAM (shown once; the server keeps only its hash)."""
    with SchedulerClient(url, token) as client:
        click.echo(client.create_token(team, as_admin, expires_in_s))


@tokens.command("list")
@_URL
@_TOKEN
@click.option("--team", default="", help="Only this team's tokens.")
def list_tokens(url: str, token: str, team: str) -> None:
    """Every token's id, team, role and expiry (never the token itself)."""
    with SchedulerClient(url, token) as client:
        found = client.tokens(team)
    rows = [("ID", "TEAM", "ROLE", "CREATED", "EXPIRES")]
    for info in found:
        role = "admin (env)" if info["from_environment"] else "admin" if info["admin"] else "team"
        expires = _when(info["expires_at"]) if info["expires_at"] is not None else "never"
        rows.append((info["id"], info["team"], role, _when(info["created_at"]), expires))
    click.echo(_columns(rows))


@tokens.command("revoke")
@_URL
@_TOKEN
@click.argument("token_id")
def revoke_token(url: str, token: str, token_id: str) -> None:
    """Revoke the token with TOKEN_ID (from `tokens list`); it stops working at once."""
    with SchedulerClient(url, token) as client:
        client.revoke_token(token_id)
    click.echo(f"revoked {token_id}")


@queue.command()
@_URL
@_TOKEN
@click.option("--set", "set_name", default="", help="Create or change this queue (admin token).")
@click.option("--cpu", default="0", help="Nominal CPU quota for --set.")
@click.option("--memory", default="0", help="Nominal memory quota for --set.")
@click.option("--gpu", default=0, help="Nominal GPU quota for --set.")
@click.option("--cohort", default="", help="Cohort to share unused quota in, for --set.")
@click.option("--borrow-cpu", default="0", help="CPU it may borrow from its cohort, for --set.")
def queues(url: str, token: str, set_name: str, cpu: str, memory: str, gpu: int, cohort: str, borrow_cpu: str) -> None:
    """List queues and their quotas; with --set, create or change one."""
    with SchedulerClient(url, token) as client:
        if set_name:
            nominal = {"cpu": cpu, "memory": memory, "gpu": gpu}
            client.put_queue(set_name, nominal, cohort, {"cpu": borrow_cpu, "memory": memory if cohort else 0})
        for spec in client.queues():
            nominal = spec["nominal"]
            line = f"{spec['name']:<20} cpu={nominal['cpu']:<8} memory={nominal['memory']:<10} gpu={nominal['gpu']}"
            click.echo(line + (f"  cohort={spec['cohort']}" if spec["cohort"] else ""))


@queue.command()
@click.option("--store", default="", help="sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB.")
@click.option("--store-file", default="", help="A file holding the store URL (default: $KUBEFORGE_STORE_URL).")
@click.option("--tls-cert", default="", help="Serve HTTPS with this PEM certificate chain...")
@click.option("--tls-key", default="", help="...and this PEM private key.")
@click.option("--backend", default="local", show_default=True, type=click.Choice(["local", "slurm", "kubernetes"]))
@click.option("--state-dir", default=".kubeforge/scheduler", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option("--no-dispatch", is_flag=True, help="API only; another replica holds the dispatcher lease.")
@click.option("--grace", "grace_s", default=30.0, show_default=True, help="Seconds between SIGTERM and SIGKILL.")
@click.option("--cpu", default="", help="Capacity override (default: read from the machine or cluster).")
@click.option("--memory", default="", help="Capacity override, e.g. 64Gi.")
@click.option("--gpu", default=-1, help="Capacity override.")
@click.option("--namespace", default="default", show_default=True, help="kubernetes backend: where jobs go.")
@click.option("--kueue-queue", default="", help="kubernetes backend: create jobs suspended for this Kueue queue.")
def serve(
    store: str,
    store_file: str,
    backend: str,
    state_dir: str,
    host: str,
    port: int,
    no_dispatch: bool,
    grace_s: float,
    **extra: Any,
) -> None:
    """Run the REST API and the dispatcher (admin token from $KUBEFORGE_ADMIN_TOKEN; a store URL with a
    password from $KUBEFORGE_STORE_URL or --store-file, never the command line)."""
    from kubeforge.scheduler.serve import ServeOptions, store_url, take_admin_token
    from kubeforge.scheduler.serve import serve as run_server

    url = store_url(store, store_file)
    options = ServeOptions(url, backend, state_dir, host, port, dispatch=not no_dispatch, grace_s=grace_s, **extra)
    run_server(options, admin_token=take_admin_token())  # read once and removed: never inherited


def _table(jobs: list[dict[str, Any]]) -> str:
    rows = [("ID", "ARRAY", "STATE", "QUEUE", "TEAM", "PRIO", "TRY", "REASON")]
    for job in jobs:
        spec = job["spec"]
        reason = str(job["reason"])[:48]
        rows.append(
            (
                str(job["id"]),
                f"{job['array_id']}[{job['array_index']}]" if job.get("array_id") is not None else "-",
                job["state"],
                spec["queue"],
                spec["team"],
                str(spec["priority"]),
                str(job["attempt"]),
                reason,
            )
        )
    return _columns(rows)


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


__all__ = ["queue"]
