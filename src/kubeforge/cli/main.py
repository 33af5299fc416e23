"""The `kubeforge` root command and its own commands (compile, run locally, demo); the groups join it here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kubeforge import __version__
from kubeforge.errors import InputError, KubeforgeError


@click.group()
@click.version_option(__version__, prog_name="kubeforge")
def cli() -> None:
    """Reusable Kubeflow Pipelines components for tabular ML with PyTorch."""


@cli.command()
@click.argument("pipeline")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the YAML.")
def compile(pipeline: str, output: Path | None) -> None:
    """Compile PIPELINE (a built-in name or FILE.py[:FUNCTION]) to KFP pipeline YAML."""
    from kubeforge.catalog.compiling import compile_pipeline
    from kubeforge.catalog.pipelines import load_pipeline

    function = load_pipeline(pipeline)
    target = output or Path(f"{pipeline.partition(':')[0].removesuffix('.py')}.yaml").resolve()
    compile_pipeline(function, target)
    click.echo(f"compiled {pipeline} -> {target}")


@cli.command()
@click.argument("pipeline")
@click.option("--local", "local_run", is_flag=True, help="Run every task on this machine (kfp.local, warm workers).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A pipeline parameter; repeatable.")
@click.option("--pipeline-root", default="local_outputs", show_default=True, help="Where task outputs go.")
@click.option("--no-cache", is_flag=True, help="Run every task, even one whose inputs match a finished task.")
@click.option("--resume", metavar="RUN", help="Re-run the failed run RUN (name or folder), reusing its finished tasks.")
@click.option("--json", "json_events", is_flag=True, help="Progress as JSON lines on stdout (task logs on stderr).")
def run(
    pipeline: str,
    local_run: bool,
    params: tuple[str, ...],
    pipeline_root: str,
    no_cache: bool,
    resume: str | None,
    json_events: bool,
) -> None:
    """Run PIPELINE (a built-in name or FILE.py[:FUNCTION])."""
    from kubeforge.catalog.pipelines import load_pipeline, parse_params
    from kubeforge.local.commands import run_local

    if not local_run:
        raise InputError("run: only local runs are available here; pass --local")
    function = load_pipeline(pipeline)
    result = run_local(
        function,
        parse_params(params, function),
        pipeline_root,
        no_cache=no_cache,
        resume=resume,
        json_events=json_events,
    )
    if not json_events:
        click.echo(
            f"pipeline {result.pipeline} finished in {result.seconds:.1f} s "
            f"({result.count('cached') + result.count('resumed')} task(s) reused); outputs in {result.run_dir}"
        )
        if (result.run_dir / "report.html").is_file():
            click.echo(f"report: {result.run_dir / 'report.html'}")


@cli.command()
@click.option("--workdir", default=".kubeforge/demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--epochs", default=30, show_default=True)
def demo(workdir: Path, epochs: int) -> None:
    """Run tabular_classifier on the breast cancer data end to end and query the served model."""
    from kubeforge.demo import run_demo

    run_demo(workdir.resolve(), epochs=epochs)


# catalogue: `kubeforge components list`
from kubeforge.cli.components import components as _components_group  # noqa: E402

cli.add_command(_components_group)

# serving: `kubeforge serve`
from kubeforge.cli.serve import serve as _serve_command  # noqa: E402

cli.add_command(_serve_command)

# --- infrastructure: kubeforge infra plan|up|down|output ---
from kubeforge.cli.infra import infra as _infra_command  # noqa: E402

cli.add_command(_infra_command)

# --- scheduler: kubeforge queue submit|list|show|cancel|logs|queues|serve ---
from kubeforge.cli.queue import queue as _queue_command  # noqa: E402

cli.add_command(_queue_command)

# --- local runs: kubeforge check PIPELINE --target kfp|vertex|local ---
from kubeforge.local.commands import check as _check_command  # noqa: E402

cli.add_command(_check_command)

# --- submission: kubeforge submit PIPELINE --kfp HOST | --vertex ---
from kubeforge.cli.submit import submit as _submit_command  # noqa: E402

cli.add_command(_submit_command)

# --- local run reports: kubeforge report RUN ---
from kubeforge.cli.report import report as _report_command  # noqa: E402

cli.add_command(_report_command)


def main() -> None:
    """Console entry point: kubeforge errors become one clear line and their exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KubeforgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


__all__ = ["cli", "main"]
