"""Finding a pipeline function by built-in name or by `path/to/file.py[:function]`."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, cast

from kubeforge.errors import InputError


def builtin_pipelines() -> list[str]:
    """Names of the pipelines shipped under kubeforge.pipelines."""
    root = resources.files("kubeforge.pipelines")
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and (entry / "pipeline.py").is_file())


def load_pipeline(reference: str) -> Callable[..., Any]:
    """Return the pipeline function named by `reference`.

    `reference` is a built-in pipeline name (`tabular_classifier`), or a Python file with an
    optional function name (`my_pipeline.py:train`); without a name the file must define
    exactly one pipeline.
    """
    path_text, _, function = reference.partition(":")
    if path_text.endswith(".py"):
        module = _import_file(Path(path_text))
    elif reference in builtin_pipelines():
        module = importlib.import_module(f"kubeforge.pipelines.{reference}.pipeline")
        function = reference
    else:
        raise InputError(
            f"pipeline {reference!r} is neither a .py file nor a built-in pipeline; "
            f"built-in pipelines: {', '.join(builtin_pipelines())}"
        )
    candidates = {name: obj for name, obj in vars(module).items() if _is_pipeline(obj)}
    if function:
        if function not in candidates:
            raise InputError(
                f"{reference}: no pipeline function {function!r}; found: {', '.join(candidates) or 'none'}"
            )
        return cast(Callable[..., Any], candidates[function])
    if len(candidates) != 1:
        raise InputError(
            f"{reference}: expected exactly one @dsl.pipeline function, found {len(candidates)} "
            f"({', '.join(candidates) or 'none'}); name one as FILE.py:FUNCTION"
        )
    return cast(Callable[..., Any], next(iter(candidates.values())))


def _is_pipeline(obj: Any) -> bool:
    from kfp.dsl import graph_component

    return isinstance(obj, graph_component.GraphComponent)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"pipeline file {path} does not exist")
    name = f"_kubeforge_user_pipeline_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"pipeline file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InputError(f"pipeline file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def parse_params(pairs: tuple[str, ...] | list[str], pipeline: Callable[..., Any]) -> dict[str, Any]:
    """Turn `key=value` strings into typed pipeline arguments, refusing undeclared keys."""
    inputs = pipeline.component_spec.inputs or {}  # type: ignore[attr-defined]
    converters: dict[str, Callable[[str], Any]] = {
        "Integer": int,
        "Float": float,
        "Boolean": lambda text: text.lower() in ("1", "true", "yes"),
        "List": _json_of(list),
        "Dict": _json_of(dict),
    }
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--param {pair!r}: expected KEY=VALUE")
        if key not in inputs:
            raise InputError(f"--param {key}: the pipeline declares no such parameter; it takes {', '.join(inputs)}")
        convert = converters.get(inputs[key].type, str)
        try:
            params[key] = convert(value)
        except ValueError as exc:
            raise InputError(f"--param {key}: {value!r} is not a valid {inputs[key].type}") from exc
    return params


def _json_of(kind: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        value = json.loads(text)  # a JSONDecodeError is a ValueError: reported as not valid
        if not isinstance(value, kind):
            raise ValueError(f"expected a JSON {kind.__name__}")
        return value

    return convert


def missing_params(params: dict[str, Any], pipeline: Callable[..., Any]) -> list[str]:
    """Declared parameters without a default that `params` does not give."""
    inputs = pipeline.component_spec.inputs or {}  # type: ignore[attr-defined]
    return [name for name, spec in inputs.items() if not spec.optional and name not in params]


__all__ = ["builtin_pipelines", "load_pipeline", "missing_params", "parse_params"]
