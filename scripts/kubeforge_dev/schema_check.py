"""Check Terraform resources, data sources and provider blocks against their providers' real schemas.

`terraform validate` needs the provider binaries, which cannot be installed for google, kubernetes and helm
here; their schemas come from `kubeforge_dev.provider_schemas` instead. Every `resource`, `data` and
`provider` block of a configuration folder is read with python-hcl2 and checked: each attribute and nested
block exists in the provider's schema (with the closest real name suggested otherwise), nothing read-only is
set, each required attribute and block is present, attributes are written as `name = value` and blocks as
`name { ... }`, and no single-instance block is repeated. `dynamic` blocks count as their content.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

_BLOCK_MARK = "__is_block__"
_META = {
    "resource": {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"},
    "data": {"count", "for_each", "depends_on", "provider", "lifecycle"},
    "provider": {"alias", "version"},
}
_SCHEMA_KEY = {"resource": "resource_schemas", "data": "data_source_schemas"}


@dataclass(frozen=True)
class SchemaReport:
    """What a check found: problems, and the block types it could not check (no schema for their provider)."""

    problems: list[str]
    unchecked: list[str]


def check_folder(folder: Path, schemas: dict[str, dict[str, Any]], label: str = "") -> SchemaReport:
    """Check every .tf file in `folder` against `schemas` (by provider local name, e.g. "google")."""
    problems: list[str] = []
    unchecked: set[str] = set()
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=True)
    for tf_file in sorted(folder.glob("*.tf")):
        with tf_file.open() as handle:
            parsed = hcl2.load(handle, serialization_options=options)
        where = f"{label or folder}/{tf_file.name}"
        for kind, type_name, name, body in _blocks(parsed):
            provider = type_name if kind == "provider" else type_name.split("_", 1)[0]
            schema = schemas.get(provider)
            if schema is None:
                unchecked.add(f"{kind} {type_name}")
                continue
            address = f"provider {type_name}" if kind == "provider" else f"{kind} {type_name}.{name}"
            source = f"{schema['provider']} {schema['version']}"
            block = schema.get("provider_schema") if kind == "provider" else schema[_SCHEMA_KEY[kind]].get(type_name)
            if block is None:
                problems.append(f"{where}: {address}: no such {kind} type in {source}")
                continue
            found = check_block(body, block, _META[kind])
            problems.extend(f"{where}: {address}: {problem} ({source})" for problem in found)
    return SchemaReport(problems, sorted(unchecked))


def _blocks(parsed: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for kind in ("resource", "data"):
        for group in parsed.get(kind, []):
            for type_name, instances in group.items():
                if type_name != _BLOCK_MARK:
                    found.extend(
                        (kind, type_name, name, body) for name, body in instances.items() if name != _BLOCK_MARK
                    )
    for group in parsed.get("provider", []):
        found.extend(("provider", name, "", body) for name, body in group.items() if name != _BLOCK_MARK)
    return found


def check_block(
    body: dict[str, Any], schema: dict[str, Any], meta: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Problems of one block body (python-hcl2 with explicit blocks) against a schema block; paths are dotted."""
    attributes: dict[str, Any] = schema.get("attributes", {})
    nested: dict[str, Any] = schema.get("block_types", {})
    problems: list[str] = []
    seen: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or key in meta:  # python-hcl2's own keys (__is_block__, __comments__)
            continue
        if key == "dynamic" and isinstance(value, list):
            for dynamic in value:
                for label, spec in dynamic.items():
                    if not label.startswith("__"):
                        problems.extend(_check_nested(label, spec.get("content", []), nested, attributes, dynamic=True))
                        seen.add(label)
            continue
        if _is_block(value):
            problems.extend(_check_nested(key, value, nested, attributes, dynamic=False))
            seen.add(key)
        elif key in attributes:
            if attributes[key].get("computed") and not (
                attributes[key].get("optional") or attributes[key].get("required")
            ):
                problems.append(f"{key}: read-only attribute, set by the provider; remove it")
        elif key in nested:
            problems.append(f"{key}: is a block; write `{key} {{ ... }}`, not `{key} = ...`")
        else:
            problems.append(_unknown(key, attributes, nested))
    for key, spec in attributes.items():
        if spec.get("required") and key not in body:
            problems.append(f"{key}: required attribute is missing")
    for key, spec in nested.items():
        if spec.get("min_items", 0) > 0 and key not in seen:
            problems.append(f"{key}: required block is missing")
    return problems


def _check_nested(
    key: str, bodies: list[dict[str, Any]], nested: dict[str, Any], attributes: dict[str, Any], dynamic: bool
) -> list[str]:
    if key not in nested:
        fields = _object_fields(attributes.get(key, {}).get("type"))
        if fields is not None:  # an SDKv2 list of objects, which HCL may also write as blocks
            return [
                f"{key}.{name}: no such field"
                for body in bodies
                for name in body
                if not name.startswith("__") and name not in fields
            ]
        if key in attributes:
            return [f"{key}: is an attribute; write `{key} = ...`, not a block"]
        return [_unknown(key, attributes, nested)]
    spec = nested[key]
    problems: list[str] = []
    if not dynamic and spec.get("max_items") == 1 and len(bodies) > 1:
        problems.append(f"{key}: at most one `{key}` block is allowed, found {len(bodies)}")
    for body in bodies:
        problems.extend(f"{key}.{problem}" for problem in check_block(body, spec["block"]))
    return problems


def _object_fields(attribute_type: Any) -> set[str] | None:
    """The field names of a `list(object)` or `set(object)` attribute type (terraform's JSON form), else None."""
    if isinstance(attribute_type, list) and attribute_type[0] in ("list", "set"):
        element = attribute_type[1]
        if isinstance(element, list) and element[0] == "object":
            return set(element[1])
    return None


def _unknown(key: str, attributes: dict[str, Any], nested: dict[str, Any]) -> str:
    close = difflib.get_close_matches(key, [*attributes, *nested], n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{key}: no such attribute or block{hint}"


def _is_block(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get(_BLOCK_MARK) for v in value)


__all__ = ["SchemaReport", "check_block", "check_folder"]
