"""Regenerate (or, with --check, verify) component.yaml files, READMEs and golden pipeline YAML."""

from __future__ import annotations

import argparse
import sys

from kubeforge_dev.catalog_build import repository_root, stale_generated, write_generated


def main() -> int:
    """Entry point: `python scripts/compile_components.py [--check]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if anything generated is stale")
    args = parser.parse_args()
    root = repository_root()
    if args.check:
        problems = stale_generated(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        print("catalogue is current" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    for path in write_generated(root):
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
