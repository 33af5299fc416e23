"""Terraform provider schemas without the provider binaries, in the shape `terraform providers schema -json` prints.

The google, kubernetes and helm providers cannot be installed here, but the prebuilt Terraform CDK packages on
the npm registry carry each provider's full schema in their `package/.jsii` file: per resource and data source a
`...Config` struct whose properties are the settable attributes and nested blocks, each with `optional` and a
docs link ending in `#<terraform_name>`. `schema_from_jsii` turns one such file into

    {"provider": "hashicorp/google", "version": "6.50.0",
     "provider_schema": BLOCK, "resource_schemas": {TYPE: BLOCK}, "data_source_schemas": {TYPE: BLOCK}}

where BLOCK is `{"attributes": {NAME: {"required": bool, "optional": bool}},
"block_types": {NAME: {"nesting_mode": "list", "min_items": N, "max_items": N, "block": BLOCK}}}`, the subset of
`terraform providers schema -json` that `kubeforge_dev.schema_check` reads. For a provider that is on the
machine (hashicorp/aws in a filesystem mirror), `schema_from_terraform` reads the real command's output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kubeforge.infra.workflow import provider_mirror_config

# npm package and version per provider, each inside the version bounds the modules pin: hashicorp/google 6.50.0,
# hashicorp/kubernetes 2.38.0, hashicorp/helm 2.17.0 (12.x is helm 3.x, whose `set` and `kubernetes` are
# attributes), hashicorp/null 3.2.4, hashicorp/local 2.6.1, kreuzwerker/docker 3.6.2. tehcyx/kind has none.
CDKTF_PACKAGES = {
    "google": "@cdktf/provider-google@16.12.1",
    "kubernetes": "@cdktf/provider-kubernetes@12.1.1",
    "helm": "@cdktf/provider-helm@11.0.0",
    "null": "@cdktf/provider-null@11.0.1",
    "local": "@cdktf/provider-local@11.1.1",
    "docker": "@cdktf/provider-docker@12.0.3",
}
_REGISTRY_LINK = re.compile(r"registry\.terraform\.io/providers/([\w-]+/[\w-]+)/([\w.]+)/docs(?:/([\w-]+)/(\w+))?")
_REPRESENTS = re.compile(r"^Represents a \{@link (\S+) (\w+)\}")
_FRAGMENT = re.compile(r"#(\w+) ")
_SKIP_WHEN_SEARCHING = ("/proc", "/sys", "/dev", "/tmp", "/run")
_KINDS = {"resources": "resource_schemas", "data-sources": "data_source_schemas"}


def schema_from_jsii(jsii: dict[str, Any]) -> dict[str, Any]:
    """The provider, resource and data source schemas held by one CDK provider package's `.jsii`."""
    types: dict[str, Any] = jsii["types"]
    converter = _JsiiConverter(types)
    schema: dict[str, Any] = {"resource_schemas": {}, "data_source_schemas": {}}
    for spec in types.values():
        represents = _REPRESENTS.match(spec.get("docs", {}).get("summary", "")) if spec["kind"] == "class" else None
        link = _REGISTRY_LINK.search(represents.group(1)) if represents else None
        if represents is None or link is None:
            continue
        parameters = (spec.get("initializer") or {}).get("parameters") or []
        config = next((p["type"]["fqn"] for p in parameters if p["name"] == "config"), None)
        if config is None:
            continue
        block = converter.block(config)
        schema["provider"], schema["version"] = link.group(1), link.group(2)
        if link.group(3) is None:
            schema["provider_schema"] = block
        elif link.group(3) in _KINDS:
            schema[_KINDS[link.group(3)]][represents.group(2)] = block
    if "provider" not in schema:
        raise ValueError("no Terraform resource classes found in this .jsii; is it a @cdktf/provider-* package?")
    return schema


class _JsiiConverter:
    """Turns jsii structs into schema blocks, each struct converted once."""

    def __init__(self, types: dict[str, Any]) -> None:
        self.types = types
        self.done: dict[str, dict[str, Any]] = {}

    def block(self, fqn: str) -> dict[str, Any]:
        if fqn in self.done:
            return self.done[fqn]
        block: dict[str, Any] = {"attributes": {}, "block_types": {}}
        self.done[fqn] = block
        for prop in self.types[fqn].get("properties", []):
            docs = prop.get("docs", {})
            fragment = _FRAGMENT.search(docs.get("remarks", ""))
            name = fragment.group(1) if fragment else _snake(prop["name"])
            required = not prop.get("optional", False)
            struct, many = self._struct(prop["type"])
            if struct is not None and docs.get("summary", "").endswith(" block."):
                nested = {"nesting_mode": "list", "min_items": int(required), "block": self.block(struct)}
                if not many:
                    nested["max_items"] = 1
                block["block_types"][name] = nested
            else:
                block["attributes"][name] = {"required": required, "optional": not required}
        return block

    def _struct(self, jsii_type: dict[str, Any]) -> tuple[str | None, bool]:
        """The struct a property's type names (if any) and whether it is a collection of them."""
        if "fqn" in jsii_type:
            found = self.types.get(jsii_type["fqn"], {})
            return (jsii_type["fqn"], False) if found.get("datatype") else (None, False)
        if "collection" in jsii_type:
            struct, _ = self._struct(jsii_type["collection"]["elementtype"])
            return struct, True
        for member in jsii_type.get("union", {}).get("types", []):
            struct, many = self._struct(member)
            if struct is not None:
                return struct, many
        return None, False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def schema_from_terraform(terraform: Path, source: str, mirror: Path) -> dict[str, Any]:
    """The schema of provider `source` (e.g. hashicorp/aws) installed from a filesystem `mirror`.

    Runs `terraform init` in a scratch folder with a CLI config naming the mirror, then
    `terraform providers schema -json`, and returns that provider's part of it.
    """
    name = source.split("/")[-1]
    with tempfile.TemporaryDirectory(prefix="kubeforge-schema-") as scratch:
        folder = Path(scratch)
        (folder / "main.tf").write_text(
            f'terraform {{\n  required_providers {{\n    {name} = {{ source = "{source}" }}\n  }}\n}}\n'
        )
        config = provider_mirror_config(mirror, folder)
        environment = {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1"}
        subprocess.run(
            [str(terraform), "init", "-backend=false", "-input=false"],
            cwd=folder,
            env=environment,
            check=True,
            capture_output=True,
        )
        printed = subprocess.run(
            [str(terraform), "providers", "schema", "-json"],
            cwd=folder,
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    provider = next(iter(json.loads(printed)["provider_schemas"].values()))
    version = _mirror_version(mirror, source)
    return {
        "provider": source,
        "version": version,
        "provider_schema": provider["provider"]["block"],
        "resource_schemas": {k: v["block"] for k, v in provider.get("resource_schemas", {}).items()},
        "data_source_schemas": {k: v["block"] for k, v in provider.get("data_source_schemas", {}).items()},
    }


def _mirror_version(mirror: Path, source: str) -> str:
    versions = sorted(p.name for p in (mirror / "registry.terraform.io" / source).iterdir() if p.is_dir())
    return versions[-1] if versions else "unknown"


def find_provider_mirror(remembered: Path, named: str = "") -> Path | None:
    """The filesystem mirror holding hashicorp/aws: `named` (e.g. from an env var), the one remembered in the file
    `remembered`, or else the first found by searching this machine (then remembered there)."""
    if named:
        return Path(named) if _has_aws(Path(named)) else None
    if remembered.is_file() and _has_aws(Path(remembered.read_text().strip())):
        return Path(remembered.read_text().strip())
    for root, dirs, _files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in _SKIP_WHEN_SEARCHING and d != ".terraform"]
        if "registry.terraform.io" in dirs and _has_aws(Path(root)):
            remembered.parent.mkdir(parents=True, exist_ok=True)
            remembered.write_text(root)
            return Path(root)
    return None


def _has_aws(mirror: Path) -> bool:
    return any((mirror / "registry.terraform.io" / "hashicorp" / "aws").glob("*/*/terraform-provider-aws*"))


def load_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """The cached schemas in `folder` (written by `scripts/provider_schemas.py fetch`), by provider local name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


__all__ = ["CDKTF_PACKAGES", "find_provider_mirror", "load_schemas", "schema_from_jsii", "schema_from_terraform"]
