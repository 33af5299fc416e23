"""`kubeforge submit`: send a pipeline to a Kubeflow Pipelines endpoint or to Vertex AI Pipelines."""

from __future__ import annotations

import click

from kubeforge import settings
from kubeforge.errors import InputError


@click.command()
@click.argument("pipeline")
@click.option("--kfp", "kfp_host", metavar="HOST", help="KFP endpoint URL, e.g. http://localhost:8080.")
@click.option("--vertex", is_flag=True, help="Submit to Vertex AI Pipelines instead.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A pipeline parameter; repeatable.")
@click.option("--wait", is_flag=True, help="Follow the run; exit non-zero unless it succeeds.")
@click.option("--run-name", default="", help="Display name of the run (default: the pipeline's name).")
@click.option("--pipeline-root", default="", help="Where task outputs go (required with --vertex: gs://...).")
@click.option("--caching/--no-caching", default=None, help="Override the compiled caching setting of every task.")
@click.option("--service-account", default="", help="Service account the run's tasks use.")
@click.option("--experiment", default="Default", show_default=True, help="KFP: experiment to file the run under.")
@click.option("--schedule", default="", metavar="CRON", help="KFP: create a recurring run on this cron schedule.")
@click.option("--namespace", default="", help="KFP: namespace of a multi-user deployment.")
@click.option("--token-env", default=settings.KFP_TOKEN.name, show_default=True, help="KFP: variable with the token.")
@click.option("--project", default="", help="Vertex: Google Cloud project.")
@click.option("--region", default="us-central1", show_default=True, help="Vertex: region.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Vertex: job label; repeatable.")
@click.option("--network", default="", help="Vertex: VPC network to peer, projects/N/global/networks/NAME.")
@click.option("--api-endpoint", default="", help="Vertex: API endpoint (regional, private or a URL).")
@click.option("--poll-interval", default=5.0, show_default=True, help="Seconds between status checks with --wait.")
def submit(
    pipeline: str,
    kfp_host: str | None,
    vertex: bool,
    params: tuple[str, ...],
    wait: bool,
    run_name: str,
    pipeline_root: str,
    caching: bool | None,
    service_account: str,
    experiment: str,
    schedule: str,
    namespace: str,
    token_env: str,
    project: str,
    region: str,
    labels: tuple[str, ...],
    network: str,
    api_endpoint: str,
    poll_interval: float,
) -> None:
    """Compile PIPELINE (a built-in name or FILE.py[:FUNCTION]) and submit it to --kfp HOST or --vertex."""
    from kubeforge.infra.config import load_config
    from kubeforge.submit.base import parse_labels, prepared_pipeline

    if not kfp_host and not vertex:
        # After `kubeforge infra up`, the cluster's KFP endpoint and artifact root are recorded.
        recorded = load_config()
        kfp_host = str(recorded.get("kfp_endpoint") or "") or None
        pipeline_root = pipeline_root or str(recorded.get("artifact_root") or "")
        if not kfp_host:
            raise InputError("submit: choose a target, --kfp HOST or --vertex (or run `kubeforge infra up` first)")
    if kfp_host and vertex:
        raise InputError("submit: choose one target, --kfp HOST or --vertex")
    if vertex and schedule:
        raise InputError("--schedule is for --kfp; schedule Vertex AI pipelines with Cloud Scheduler")
    vertex_labels = parse_labels(labels)
    with prepared_pipeline(pipeline, params) as prepared:
        if kfp_host:
            from kubeforge.submit.kfp import KfpOptions, submit_to_kfp

            kfp_options = KfpOptions(
                host=kfp_host,
                experiment=experiment,
                run_name=run_name,
                schedule=schedule,
                token_env=token_env,
                namespace=namespace,
                service_account=service_account,
                pipeline_root=pipeline_root,
                enable_caching=caching,
            )
            submission = submit_to_kfp(prepared, kfp_options, click.echo, wait=wait, poll_s=poll_interval)
        else:
            from kubeforge.submit.vertex import VertexOptions, submit_to_vertex

            vertex_options = VertexOptions(
                project=project,
                region=region,
                pipeline_root=pipeline_root,
                display_name=run_name,
                service_account=service_account,
                network=network,
                labels=vertex_labels,
                enable_caching=caching,
                api_endpoint=api_endpoint,
            )
            submission = submit_to_vertex(prepared, vertex_options, click.echo, wait=wait, poll_s=poll_interval)
    if submission.final is not None:
        click.echo(f"{submission.kind} {submission.resource_id} {submission.final.state}")


__all__ = ["submit"]
