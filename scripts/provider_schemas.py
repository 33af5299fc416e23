"""Terraform provider schemas for the schema check of terraform/ (run by `make tools` and `make check-infra`).

    python scripts/provider_schemas.py fetch    cache the schemas under .tools/provider-schemas/ (once)
    python scripts/provider_schemas.py check    check every configuration under terraform/ against them

`fetch` takes google, kubernetes and helm from the Terraform CDK packages on the npm registry (`npm pack`,
the only network access) and hashicorp/aws from `terraform providers schema -json` with the filesystem
mirror named by $KUBEFORGE_PROVIDER_MIRROR or remembered in .tools/provider-mirror (skipped without one).
`check` needs no network; the tehcyx/kind, kreuzwerker/docker, null and local providers have no schema
package and are listed as unchecked.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from kubeforge_dev.hcl_checks import configuration_folders
from kubeforge_dev.provider_schemas import (
    CDKTF_PACKAGES,
    find_provider_mirror,
    load_schemas,
    schema_from_jsii,
    schema_from_terraform,
)
from kubeforge_dev.schema_check import check_folder

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
CACHE = TOOLS / "provider-schemas"
MIRROR_ENV = "KUBEFORGE_PROVIDER_MIRROR"


def fetch(cache: Path) -> None:
    """Write `<provider>.json` into `cache` for each provider whose cached schema is missing or stale."""
    cache.mkdir(parents=True, exist_ok=True)
    for name, package in CDKTF_PACKAGES.items():
        target = cache / f"{name}.json"
        if target.is_file() and json.loads(target.read_text()).get("package") == package:
            continue
        print(f"extracting the {name} provider schema from {package}")
        with tempfile.TemporaryDirectory(prefix="kubeforge-npm-") as scratch:
            subprocess.run(["npm", "pack", "--silent", package], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
            tarball = next(Path(scratch).glob("*.tgz"))
            with tarfile.open(tarball) as archive:
                member = archive.extractfile("package/.jsii")
                assert member is not None, f"{package} has no package/.jsii"
                schema = schema_from_jsii(json.load(member))
        target.write_text(json.dumps({"package": package, **schema}, separators=(",", ":")))
    mirror = find_provider_mirror(TOOLS / "provider-mirror", os.environ.get(MIRROR_ENV, ""))
    aws = cache / "aws.json"
    terraform = TOOLS / "bin" / "terraform"
    if mirror is None:
        print(f"no provider mirror with hashicorp/aws (set {MIRROR_ENV}); the eks module's schema check is skipped")
    elif not aws.is_file() and terraform.is_file():
        print(f"reading the hashicorp/aws schema from the mirror at {mirror}")
        aws.write_text(json.dumps(schema_from_terraform(terraform, "hashicorp/aws", mirror), separators=(",", ":")))


def check(cache: Path) -> int:
    """Check terraform/ against the cached schemas; print problems and what could not be checked."""
    schemas = load_schemas(cache)
    if not {*CDKTF_PACKAGES} <= {*schemas}:
        print(f"provider schemas missing in {cache}: run `make tools`", file=sys.stderr)
        return 2
    problems: list[str] = []
    unchecked: set[str] = set()
    for folder in configuration_folders(ROOT / "terraform"):
        report = check_folder(folder, schemas, label=str(folder.relative_to(ROOT)))
        problems.extend(report.problems)
        unchecked.update(report.unchecked)
    for problem in problems:
        print(problem, file=sys.stderr)
    checked = ", ".join(f"{s['provider']} {s['version']}" for s in schemas.values())
    print(f"checked against {checked}; no schema for: {', '.join(sorted(unchecked)) or 'none'}")
    print("provider schemas: sound" if not problems else f"provider schemas: {len(problems)} problem(s)")
    return 1 if problems else 0


def main() -> int:
    """Entry point: `python scripts/provider_schemas.py fetch|check`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("fetch", "check"))
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the extracted schemas live")
    args = parser.parse_args()
    if args.action == "fetch":
        fetch(args.cache)
        return 0
    return check(args.cache)


if __name__ == "__main__":
    sys.exit(main())
