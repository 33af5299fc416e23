"""The command-line side of local runs: `kubeforge run --local` and `kubeforge check`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kubeforge.local.check import TARGETS

if TYPE_CHECKING:
    from kubeforge.local_runner import LocalRun


def run_local(
    pipeline: Callable[..., Any],
    params: dict[str, Any],
    pipeline_root: str,
    *,
    no_cache: bool,
    resume: str | None,
    json_events: bool,
) -> LocalRun:
    """Run with progress lines among kfp.local's logs on stdout (errors alone on stderr), or, with
    `json_events`, JSON events alone on stdout and every log on stderr."""
    from kubeforge.local.progress import Progress
    from kubeforge.local.runner import RunOptions
    from kubeforge.local_runner import run_pipeline_locally

    events = sys.stdout
    options = RunOptions(cache=not no_cache, resume=resume, progress=Progress.for_stream(events, json_events))
    quiet = contextlib.redirect_stdout(sys.stderr) if json_events else contextlib.nullcontext()
    with quiet:
        return run_pipeline_locally(pipeline, params, pipeline_root, options=options)


@click.command()
@click.argument("pipeline")
@click.option("--target", type=click.Choice(TARGETS), required=True, help="Where the pipeline will run.")
def check(pipeline: str, target: str) -> None:
    """Report what TARGET would ignore or reject in PIPELINE (a built-in name or FILE.py[:FUNCTION]).

    Exits 1 when there is an error; warnings alone exit 0.
    """
    from kubeforge.catalog.pipelines import load_pipeline
    from kubeforge.local.check import check_pipeline

    findings = check_pipeline(load_pipeline(pipeline), target)  # type: ignore[arg-type]
    for finding in findings:
        click.echo(finding.line())
    errors = sum(finding.severity == "error" for finding in findings)
    click.echo(f"{pipeline} on {target}: {errors} error(s), {len(findings) - errors} warning(s)")
    if errors:
        sys.exit(1)


__all__ = ["check", "run_local"]
