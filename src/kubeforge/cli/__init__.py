"""The `kubeforge` command line, one module per command group; `main` is the console entry point."""

from kubeforge.cli.main import cli, main

__all__ = ["cli", "main"]
