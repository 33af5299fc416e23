"""`kubeforge components`: browse the component catalogue."""

from __future__ import annotations

import click


@click.group()
def components() -> None:
    """Browse the component catalogue."""


@components.command("list")
def list_components() -> None:
    """List every component with its stability and description."""
    from kubeforge.catalog import list_components as catalogue

    entries = catalogue()
    width = max(len(entry.key) for entry in entries)
    for entry in entries:
        stability = entry.metadata.get("stability", "?")
        click.echo(f"{entry.key:<{width}}  {stability:<12}  {entry.metadata.get('summary', '')}")


__all__ = ["components"]
