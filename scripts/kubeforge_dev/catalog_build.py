"""Generated catalogue files: component.yaml, component READMEs and golden pipeline YAML.

`write_generated()` regenerates them; `stale_generated()` lists those that differ from what
the code would generate now, plus metadata.yaml problems, so CI can fail on drift.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeforge import IMAGE, IMAGE_REPOSITORY, __version__
from kubeforge.catalog import STABILITY_LEVELS
from kubeforge.catalog.compiling import compile_pipeline
from kubeforge_dev.reuse_checks import version_problems

REQUIRED_METADATA = (
    "name",
    "displayName",
    "summary",
    "description",
    "stability",
    "owners",
    "tags",
    "dependencies",
    "lastVerified",
)
MAX_VERIFICATION_AGE = dt.timedelta(days=365)


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file and how to produce its content."""

    path: Path
    render: Callable[[], str]


def repository_root() -> Path:
    """The checkout this module belongs to (generation works on a source checkout only)."""
    return Path(__file__).resolve().parents[2]


def component_folders(root: Path) -> list[Path]:
    """Every components/<stage>/<name>/ folder that has a component.py."""
    return sorted(path.parent for path in (root / "components").glob("*/*/component.py"))


def pipeline_folders(root: Path) -> list[Path]:
    """Every pipelines/<name>/ folder that has a pipeline.py."""
    return sorted(path.parent for path in (root / "pipelines").glob("*/pipeline.py"))


def load_op(folder: Path) -> tuple[str, Any]:
    """The name and KFP component object that a component folder's package exports (its `*_op`)."""
    stage, name = folder.parent.name, folder.name
    module = _component_package(folder, f"kubeforge.components.{stage}.{name}")
    op_names = [attr for attr in getattr(module, "__all__", []) if attr.endswith("_op")]
    if len(op_names) != 1:
        raise ValueError(f"{folder}: its __init__.py must export exactly one *_op in __all__, found {op_names}")
    return op_names[0], getattr(module, op_names[0])


def _component_package(folder: Path, module_name: str) -> Any:
    """The installed package for `folder`; a folder outside the installed catalogue (a scaffold in a
    scratch checkout, say) is loaded from its files under a private name, leaving installed ones alone."""
    try:
        module = importlib.import_module(module_name)
        if Path(str(module.__file__)).parent == folder.resolve():
            return module
    except ModuleNotFoundError:
        pass
    private_name = f"_kubeforge_component_{abs(hash(folder.resolve()))}"
    for loaded in [name for name in sys.modules if name == private_name or name.startswith(f"{private_name}.")]:
        del sys.modules[loaded]  # always the folder's current files
    spec = importlib.util.spec_from_file_location(
        private_name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ValueError(f"{folder}: no __init__.py to import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[private_name] = module
    spec.loader.exec_module(module)
    return module


def _compiled(function: Any) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "out.yaml"
        compile_pipeline(function, target)
        return target.read_text()


def render_component_readme(folder: Path, op_name: str, op: Any, metadata: dict[str, Any]) -> str:
    """The component's README, from its metadata.yaml and its KFP signature."""
    stage, name = folder.parent.name, folder.name
    spec = op.component_spec
    lines = [
        f"# {metadata['displayName']}",
        "",
        "<!-- Generated from metadata.yaml and component.py by `make compile`; do not edit. -->",
        "",
        metadata["description"].strip(),
        "",
        f"- Catalogue entry: `{stage}/{name}`; stability: **{metadata['stability']}**; "
        f"last verified {metadata['lastVerified']}",
        f"- Version {__version__}; image `{IMAGE}`",
        f"- Owners: {', '.join(metadata['owners'])}; tags: {', '.join(metadata['tags'])}",
        "",
        "## Use",
        "",
        "```python",
        "from kfp import components",
        "",
        f'{op_name} = components.load_component_from_file("components/{stage}/{name}/component.yaml")',
        "# or, with kubeforge installed:",
        f"from kubeforge.components.{stage}.{name} import {op_name}",
        "```",
        "",
        "## Inputs",
        "",
        "| name | type | default |",
        "|---|---|---|",
    ]
    for input_name, spec_input in (spec.inputs or {}).items():
        default = "required" if not spec_input.optional else f"`{spec_input.default!r}`"
        lines.append(f"| `{input_name}` | {spec_input.type} | {default} |")
    lines += ["", "## Outputs", "", "| name | type |", "|---|---|"]
    for output_name, spec_output in (spec.outputs or {}).items():
        lines.append(f"| `{output_name}` | {spec_output.type} |")
    lines += ["", "## Dependencies", "", "| package | versions |", "|---|---|"]
    lines += [f"| {package} | `{versions}` |" for package, versions in metadata["dependencies"].items()]
    notes = metadata.get("notes")
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def check_metadata(folder: Path, metadata: dict[str, Any], today: dt.date) -> list[str]:
    """Problems with one component's metadata.yaml (missing keys, bad stability, stale verification)."""
    problems = [f"{folder}/metadata.yaml: missing key {key!r}" for key in REQUIRED_METADATA if key not in metadata]
    if problems:
        return problems
    if metadata["stability"] not in STABILITY_LEVELS:
        problems.append(
            f"{folder}/metadata.yaml: stability {metadata['stability']!r}; valid: {', '.join(STABILITY_LEVELS)}"
        )
    verified = metadata["lastVerified"]
    if not isinstance(verified, dt.date):
        problems.append(f"{folder}/metadata.yaml: lastVerified must be a date (YYYY-MM-DD)")
    elif today - verified > MAX_VERIFICATION_AGE:
        problems.append(
            f"{folder}/metadata.yaml: lastVerified {verified} is over {MAX_VERIFICATION_AGE.days} days old; "
            "re-verify the component and update the date"
        )
    return problems


def generated_files(root: Path) -> list[GeneratedFile]:
    """Every generated file of the checkout, with its renderer."""
    files: list[GeneratedFile] = []
    for folder in component_folders(root):
        op_name, op = load_op(folder)
        metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
        files.append(GeneratedFile(folder / "component.yaml", functools.partial(_compiled, op)))
        readme = functools.partial(render_component_readme, folder, op_name, op, metadata)
        files.append(GeneratedFile(folder / "README.md", readme))
    for folder in pipeline_folders(root):
        module = importlib.import_module(f"kubeforge.pipelines.{folder.name}.pipeline")
        function = getattr(module, folder.name)
        files.append(GeneratedFile(folder / "pipeline.yaml", functools.partial(_compiled, function)))
    return files


def write_generated(root: Path) -> list[Path]:
    """Regenerate every generated file; returns those whose content changed."""
    changed = []
    for generated in generated_files(root):
        content = generated.render()
        if not generated.path.is_file() or generated.path.read_text() != content:
            generated.path.write_text(content)
            changed.append(generated.path)
    return changed


def stale_generated(root: Path, today: dt.date | None = None) -> list[str]:
    """Problems that make the catalogue stale: drifted generated files and bad metadata."""
    today = today or dt.date.today()
    problems: list[str] = []
    for folder in component_folders(root):
        metadata_file = folder / "metadata.yaml"
        if not metadata_file.is_file():
            problems.append(f"{metadata_file}: missing")
            continue
        problems += check_metadata(folder, yaml.safe_load(metadata_file.read_text()), today)
    problems += stale_image_tags(root)
    for folder in component_folders(root):  # reuse: versions and images follow the package
        if (folder / "metadata.yaml").is_file():
            problems += version_problems(folder)
    for generated in generated_files(root):
        if not generated.path.is_file():
            problems.append(f"{generated.path}: missing; run `make compile`")
        elif _without_sdk_version(generated.path.read_text()) != _without_sdk_version(generated.render()):
            problems.append(f"{generated.path}: stale; run `make compile`")
    return problems


_SDK_VERSION_LINE = re.compile(r"^sdkVersion: kfp-[\w.]+$", re.MULTILINE)


def _without_sdk_version(text: str) -> str:
    """`text` less KFP's `sdkVersion` stamp: another kfp patch release compiles the same spec."""
    return _SDK_VERSION_LINE.sub("sdkVersion: kfp", text)


def stale_image_tags(root: Path) -> list[str]:
    """Image references in component code whose tag is not this package's version.

    KFP embeds a component function's source, so a default image must be a literal there;
    this keeps every such literal equal to `kubeforge.IMAGE`.
    """
    pattern = re.compile(re.escape(IMAGE_REPOSITORY) + r":([\w.\-]+)")
    problems = []
    for source in sorted((root / "components").glob("*/*/component.py")):
        for tag in pattern.findall(source.read_text()):
            if tag != __version__:
                problems.append(f"{source}: image tag {tag!r} is not the package version {__version__!r}")
    return problems


__all__ = [
    "stale_image_tags",
    "GeneratedFile",
    "check_metadata",
    "component_folders",
    "generated_files",
    "load_op",
    "pipeline_folders",
    "render_component_readme",
    "repository_root",
    "stale_generated",
    "write_generated",
]
