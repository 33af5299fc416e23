"""`kubeforge infra plan|up|down|output`: Terraform for the cluster and platform, with a readable plan."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kubeforge.infra.workflow import (
    TARGETS,
    InfraOptions,
    forget_cluster,
    parse_variables,
    prepare,
    record_cluster,
)


def _with_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the options every infra command takes; the command receives them as one InfraOptions."""

    @functools.wraps(command)
    def wrapper(
        target: str,
        var_files: tuple[Path, ...],
        variables: tuple[str, ...],
        root: Path | None,
        terraform: Path | None,
        provider_mirror: Path | None,
        aws_endpoint: str | None,
        **rest: Any,
    ) -> None:
        options = InfraOptions(
            target=target,
            root=root,
            terraform=terraform,
            var_files=var_files,
            variables=parse_variables(variables),
            provider_mirror=provider_mirror,
            aws_endpoint=aws_endpoint,
        )
        command(options, **rest)

    decorators = [
        click.option("--target", required=True, type=click.Choice(TARGETS), help="Which root in terraform/envs."),
        click.option(
            "--var-file",
            "var_files",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A .tfvars file; repeatable.",
        ),
        click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="A variable; repeatable."),
        click.option(
            "--dir",
            "root",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Run this root configuration instead of terraform/envs/TARGET.",
        ),
        click.option(
            "--terraform",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The terraform binary (default: $KUBEFORGE_TERRAFORM, .tools/bin/terraform, PATH).",
        ),
        click.option(
            "--provider-mirror",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Install providers from this filesystem mirror (default: $KUBEFORGE_PROVIDER_MIRROR).",
        ),
        click.option(
            "--aws-endpoint",
            metavar="URL",
            help="Point the AWS provider at an emulated AWS API (e.g. moto's server) with test credentials.",
        ),
    ]
    decorated: Callable[..., None] = wrapper
    for decorator in reversed(decorators):
        decorated = decorator(decorated)
    return decorated


@click.group()
def infra() -> None:
    """Stand up (or tear down) a cluster with the platform, through Terraform."""


@infra.command()
@_with_options
def plan(options: InfraOptions) -> None:
    """Show what `up` would add, change and destroy."""
    runner = prepare(options)
    click.echo(runner.plan().describe())


@infra.command()
@_with_options
@click.option("--yes", is_flag=True, help="Apply without asking.")
def up(options: InfraOptions, yes: bool) -> None:
    """Plan, confirm, apply; then record kubeconfig, KFP endpoint and artifact root for `kubeforge submit`."""
    runner = prepare(options)
    summary = runner.plan()
    click.echo(summary.describe())
    if summary.has_changes:
        if not yes:
            click.confirm("Apply this plan?", abort=True)
        runner.apply_plan()
    missing = record_cluster(options.target, runner.outputs())
    click.echo(f"{options.target}: up; recorded in kubeforge's configuration")
    if missing:
        click.echo(f"note: the root has no {', '.join(missing)} output; `kubeforge submit` needs them", err=True)


@infra.command()
@_with_options
@click.option("--yes", is_flag=True, help="Destroy without asking.")
def down(options: InfraOptions, yes: bool) -> None:
    """Plan the destroy, confirm, destroy; then forget the recorded cluster."""
    runner = prepare(options)
    summary = runner.plan(destroy=True)
    click.echo(summary.describe())
    if summary.has_changes:
        if not yes:
            click.confirm("Destroy everything above?", abort=True)
        runner.apply_plan()
    forgotten = forget_cluster(options.target)
    click.echo(f"{options.target}: down" + ("; removed from kubeforge's configuration" if forgotten else ""))


@infra.command()
@_with_options
@click.option("--json", "as_json", is_flag=True, help="Print the outputs as one JSON object.")
def output(options: InfraOptions, as_json: bool) -> None:
    """Print the root's outputs (sensitive ones included: kubeconfig)."""
    values = prepare(options).outputs()
    if as_json:
        click.echo(json.dumps(values, indent=2, sort_keys=True))
        return
    for name, value in sorted(values.items()):
        click.echo(f"{name} = {value if isinstance(value, str) else json.dumps(value)}")


__all__ = ["infra"]
