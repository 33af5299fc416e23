"""`kubeforge report RUN`: write a local run's report.html again."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run")
@click.option("--pipeline-root", default="local_outputs", show_default=True, help="Where the run's outputs are.")
def report(run: str, pipeline_root: str) -> None:
    """Rebuild report.html of the local run RUN (its name or output folder) from its record and outputs."""
    from kubeforge.local.report import rebuild_report

    root = (
        Path(run).resolve().parent if Path(run).is_dir() and pipeline_root == "local_outputs" else Path(pipeline_root)
    )
    click.echo(f"report: {rebuild_report(root.resolve(), run)}")


__all__ = ["report"]
