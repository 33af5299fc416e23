"""Check the structure of every Terraform configuration under terraform/; --write-docs regenerates module READMEs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubeforge_dev.hcl_checks import check_tree


def main() -> int:
    """Entry point: `python scripts/check_terraform.py [--write-docs]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--write-docs", action="store_true", help="regenerate the inputs/outputs tables in module READMEs"
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent / "terraform"
    problems = check_tree(root, write_docs=args.write_docs)
    for problem in problems:
        print(problem, file=sys.stderr)
    print("terraform structure is sound" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
