"""Structural checks of the Terraform under terraform/, and the generated input/output tables in each module's README.

Each configuration folder (a module or an env root) is parsed with python-hcl2 (`pip install python-hcl2`,
in the dev extra). Checked: every variable has a type and a description; every output a description;
`terraform.required_version` and every provider (with a source) have lower and upper version bounds;
every module call passes only variables the called module declares and all its required ones; every
`module.NAME.OUTPUT` reference names an output the called module declares.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

README_BEGIN = "<!-- BEGIN_TF_DOCS -->"
README_END = "<!-- END_TF_DOCS -->"
_MODULE_META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}
_MODULE_REFERENCE = re.compile(r"\bmodule\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


@dataclass
class Configuration:
    """One folder of .tf files: its variables, outputs, module calls and terraform settings."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


def load_configuration(path: Path) -> Configuration:
    """Parse every .tf file in `path`."""
    config = Configuration(path=path)
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    for tf_file in sorted(path.glob("*.tf")):
        with tf_file.open() as handle:
            parsed = hcl2.load(handle, serialization_options=options)
        config.text += tf_file.read_text()
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for block in parsed.get("module", []):
            config.modules.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


def configuration_folders(terraform_root: Path) -> list[Path]:
    """Every module and env folder under terraform/ (folders holding .tf files)."""
    return sorted({tf_file.parent for tf_file in terraform_root.rglob("*.tf") if ".terraform" not in tf_file.parts})


def check_configuration(config: Configuration) -> list[str]:
    """Problems in one configuration, each naming the file folder and the block."""
    where = config.path
    problems = [
        f"{where}: variable {name!r} has no {key}"
        for name, body in config.variables.items()
        for key in ("type", "description")
        if not body.get(key)
    ]
    problems += [
        f"{where}: output {name!r} has no description"
        for name, body in config.outputs.items()
        if not body.get("description")
    ]
    problems += _check_versions(config)
    for name, call in config.modules.items():
        problems += _check_module_call(config, name, call)
    return problems


def _check_versions(config: Configuration) -> list[str]:
    where = config.path
    required = next((str(block["required_version"]) for block in config.terraform if block.get("required_version")), "")
    if not required:
        return [f"{where}: terraform.required_version is not set"]
    problems = []
    if not _bounded(required):
        problems.append(f"{where}: terraform.required_version needs lower and upper bounds, got {required!r}")
    for block in config.terraform:
        for providers in block.get("required_providers", []):
            for provider, spec in providers.items():
                version = str(spec.get("version", "")) if isinstance(spec, dict) else ""
                if not (isinstance(spec, dict) and spec.get("source")):
                    problems.append(f"{where}: provider {provider!r} has no source")
                if not _bounded(version):
                    problems.append(
                        f"{where}: provider {provider!r} needs lower and upper version bounds, got {version!r}"
                    )
    return problems


def _bounded(constraint: str) -> bool:
    """Whether a version constraint has a lower and an upper bound (`>= A, < B` or `~> A`)."""
    return ">" in constraint and ("<" in constraint or "~>" in constraint)


def _check_module_call(config: Configuration, name: str, call: dict[str, Any]) -> list[str]:
    where = config.path
    source = str(call.get("source", ""))
    if not source.startswith("."):
        return [f"{where}: module {name!r} has a non-local source {source!r}; registry modules cannot be checked here"]
    called = load_configuration((where / source).resolve())
    if not called.variables and not called.outputs:
        return [f"{where}: module {name!r}: {source} holds no Terraform configuration"]
    arguments = set(call) - _MODULE_META_ARGUMENTS
    problems = [
        f"{where}: module {name!r} passes {argument!r}, which {source} does not declare as a variable"
        for argument in sorted(arguments - set(called.variables))
    ]
    required = {variable for variable, body in called.variables.items() if "default" not in body}
    problems += [
        f"{where}: module {name!r} does not pass required variable {variable!r} of {source}"
        for variable in sorted(required - arguments)
    ]
    for module, output in sorted(set(_MODULE_REFERENCE.findall(config.text))):
        if module == name and output not in called.outputs:
            problems.append(f"{where}: module.{name}.{output} is referenced, but {source} has no output {output!r}")
    return problems


def _cell(value: Any) -> str:
    text = value.removeprefix("${").removesuffix("}") if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def docs_table(config: Configuration) -> str:
    """The README's generated section: an inputs table and an outputs table."""
    lines = [
        README_BEGIN,
        "## Inputs",
        "",
        "| name | description | type | default | required |",
        "|---|---|---|---|:---:|",
    ]
    for name, body in sorted(config.variables.items()):
        default = f"`{_cell(body['default'])}`" if "default" in body else "n/a"
        required = "no" if "default" in body else "yes"
        description, kind = _cell(body.get("description", "")), _cell(body.get("type", ""))
        lines.append(f"| `{name}` | {description} | `{kind}` | {default} | {required} |")
    lines += ["", "## Outputs", "", "| name | description |", "|---|---|"]
    lines += [f"| `{name}` | {_cell(body.get('description', ''))} |" for name, body in sorted(config.outputs.items())]
    lines.append(README_END)
    return "\n".join(lines)


def readme_problems(config: Configuration, write: bool = False) -> list[str]:
    """Whether README.md's generated section is current; with `write`, regenerate it instead."""
    readme = config.path / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    if README_BEGIN not in text or README_END not in text:
        return [f"{readme}: missing the {README_BEGIN} ... {README_END} section"]
    head, _, rest = text.partition(README_BEGIN)
    _, _, tail = rest.partition(README_END)
    current = head + docs_table(config) + tail
    if current == text:
        return []
    if write:
        readme.write_text(current)
        return []
    return [f"{readme}: the inputs/outputs tables are stale; run `make infra-docs`"]


def check_tree(terraform_root: Path, write_docs: bool = False) -> list[str]:
    """Every problem under terraform/: structure of every folder, README tables of every module."""
    problems: list[str] = []
    for folder in configuration_folders(terraform_root):
        config = load_configuration(folder)
        problems += check_configuration(config)
        if folder.parent.name == "modules":
            problems += readme_problems(config, write=write_docs)
    return problems


__all__ = [
    "README_BEGIN",
    "README_END",
    "Configuration",
    "check_configuration",
    "check_tree",
    "configuration_folders",
    "docs_table",
    "load_configuration",
    "readme_problems",
]
