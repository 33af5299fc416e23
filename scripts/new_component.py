"""Scaffold a new catalogue component: components/<stage>/<name>/ that passes every catalogue check.

    python scripts/new_component.py STAGE NAME [--summary TEXT] [--root CHECKOUT]

Writes __init__.py (exports `<name>_op` lazily), component.py (thin KFP wrapper on the kubeforge
image), core.py (pure logic, no kfp import: counts a table's rows to start from), metadata.yaml,
then generates component.yaml and README.md. Existing folders are never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
from pathlib import Path

from kubeforge_dev.catalog_build import generated_files, repository_root, stale_generated

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")

_INIT = '''"""{summary}

`{op}` is the KFP component (loaded lazily, so the pure `core` module needs no kfp import).
"""

from kubeforge.catalog import lazy_op

__all__ = ["{op}"]
__getattr__ = lazy_op(__name__, "{op}", "{function}")
'''

_COMPONENT = '''"""KFP definition of `{stage}/{name}`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def {function}(
    data: Input[Dataset],
    metrics: Output[Metrics],
    minimum_rows: int = 1,
) -> int:
    """{summary} Returns the number of rows."""
    from kubeforge.components.{stage}.{name} import core

    result = core.run(data.path, minimum_rows=minimum_rows)
    metrics.log_metric("rows", result.rows)
    return int(result.rows)
'''

_CORE = '''"""`{stage}/{name}`: the component's logic on paths and values, with no kfp import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeforge.errors import InputError
from kubeforge.tabular import read_table


@dataclass(frozen=True)
class Result:
    """What the component found."""

    rows: int


def run(data: str | Path, minimum_rows: int = 1) -> Result:
    """Read the CSV/Parquet table at `data` and check it has at least `minimum_rows` rows."""
    rows = len(read_table(data))
    if rows < minimum_rows:
        raise InputError(f"data {{data}}: {{rows}} row(s), fewer than minimum_rows={{minimum_rows}}")
    return Result(rows=rows)


__all__ = ["Result", "run"]
'''

_METADATA = """name: {function}
displayName: {display_yaml}
summary: {summary_yaml}
description: >
  {summary} Replace this description with what the component does, its inputs and outputs.
stability: experimental
owners:
  - kubeforge-maintainers
tags: [{stage}]
dependencies:
  kubeforge: ">={major_minor},<{next_minor}"
  kfp: ">=2.17,<2.18"
lastVerified: {today}
"""


def scaffold(root: Path, stage: str, name: str, summary: str) -> Path:
    """Write the new component's folder under `root` and generate its component.yaml and README."""
    from kubeforge import __version__

    for label, value in (("stage", stage), ("name", name)):
        if not _IDENTIFIER.match(value):
            raise SystemExit(f"{label} {value!r}: use lowercase letters, digits and '_', starting with a letter")
    folder = root / "components" / stage / name
    if folder.exists():
        raise SystemExit(f"{folder} exists already; pick another name")
    major, minor = (int(part) for part in __version__.split(".")[:2])
    values = {
        "stage": stage,
        "name": name,
        "op": f"{name}_op",
        "function": f"{stage}_{name}",
        "summary": summary.rstrip(".") + ".",
        "display": f"{stage.replace('_', ' ').capitalize()}: {name.replace('_', ' ')}",
        "major_minor": f"{major}.{minor}",
        "next_minor": f"{major}.{minor + 1}",
        "today": dt.date.today().isoformat(),
    }
    values["display_yaml"], values["summary_yaml"] = json.dumps(values["display"]), json.dumps(values["summary"])
    stage_init = root / "components" / stage / "__init__.py"
    folder.mkdir(parents=True)
    try:
        if not stage_init.exists():
            stage_init.write_text('"""kubeforge package."""\n')
        for file_name, template in (
            ("__init__.py", _INIT),
            ("component.py", _COMPONENT),
            ("core.py", _CORE),
            ("metadata.yaml", _METADATA),
        ):
            (folder / file_name).write_text(template.format(**values))
        for generated in generated_files(root):
            if generated.path.parent == folder:
                generated.path.write_text(generated.render())
    except BaseException:
        shutil.rmtree(folder)  # a scaffold that cannot be generated is not left half-written
        raise
    return folder


def main() -> int:
    """Entry point: scaffold, then run the catalogue checks on the new folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help="catalogue stage, e.g. preprocess, training, evaluation")
    parser.add_argument("name", help="component name within the stage")
    parser.add_argument("--summary", default="Checks that a table has enough rows.", help="one-line summary")
    parser.add_argument("--root", type=Path, default=repository_root(), help="checkout to write into")
    args = parser.parse_args()
    folder = scaffold(args.root.resolve(), args.stage, args.name, args.summary)
    problems = [p for p in stale_generated(args.root.resolve()) if str(folder) in p]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"created {folder}; edit core.py, component.py and metadata.yaml, then run `make compile`")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
