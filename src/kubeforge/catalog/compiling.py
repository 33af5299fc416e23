"""Compiling pipelines and components to YAML, atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubeforge.artifacts import atomic_output


def compile_pipeline(function: Callable[..., Any], target: str | Path) -> None:
    """Compile a pipeline or component to KFP IR YAML; a failed compile leaves no file."""
    from kfp import compiler

    with atomic_output(str(target)) as staging:
        compiler.Compiler().compile(function, str(staging))


__all__ = ["compile_pipeline"]
