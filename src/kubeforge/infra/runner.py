"""Terraform commands through python-terraform, with the fixes that Terraform 1.x needs.

python-terraform 0.10.1 was written for Terraform 0.x. Against 1.x (see DEVELOPERS.md):

* `destroy()` passes `-force`, which 1.x removed (it would need `force=IsNotFlagged, auto_approve=IsFlagged`);
  kubeforge applies the confirmed `plan -destroy` instead, so exactly what was shown is destroyed.
* `output(NAME)` expects the 0.x JSON shape: read all outputs with `output()` instead.
* `plan()` uses `-detailed-exitcode`: 0 no changes, 2 changes, 1 error (2 is not a failure).
* applying a saved plan must not repeat `-var`/`-var-file` (1.x refuses them with a plan file).
* a failed command logs through the deprecated `Logger.warn`; that warning is silenced here.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, Terraform

from kubeforge.errors import InfraError
from kubeforge.infra.plan import PlanSummary, summarize_plan

PLAN_FILE = "kubeforge.tfplan"
"""The saved plan, written inside the root's .terraform directory."""

BACKEND_FILE = "backend.hcl"
"""A root's partial backend configuration (bucket, key, lock table), passed to init when present."""

_PLAN_NO_CHANGES, _PLAN_CHANGES = 0, 2


class TerraformRunner:
    """Runs init, plan, apply, destroy and output in one root configuration."""

    def __init__(
        self,
        root: Path,
        binary: Path,
        var_files: Sequence[Path] = (),
        variables: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare to run `binary` in `root` with these var files, variables and extra environment."""
        if not root.is_dir():
            raise InfraError(f"terraform root {root}: no such directory; pass an existing configuration with --dir")
        for var_file in var_files:
            if not var_file.is_file():
                raise InfraError(f"--var-file {var_file}: no such file")
        self.root = root
        self._environment = dict(environment or {})
        self._terraform = Terraform(
            working_dir=str(root),
            terraform_bin_path=str(binary),
            var_file=[str(path.resolve()) for path in var_files] or None,
            variables=dict(variables or {}),
        )

    @property
    def plan_file(self) -> Path:
        """Where the last plan was saved."""
        return self.root / ".terraform" / PLAN_FILE

    def init(self) -> None:
        """`terraform init`: backend (with backend.hcl when the root has one), modules and providers."""
        backend_file = BACKEND_FILE if (self.root / BACKEND_FILE).is_file() else None
        # python-terraform turns a dict into -backend-config=K=V pairs; a string passes through as a file name.
        self._run("init", lambda: self._terraform.init(input=False, backend_config=backend_file))

    def plan(self, destroy: bool = False) -> PlanSummary:
        """`terraform plan` saved to `plan_file`, summarized; `destroy` plans the removal of everything."""
        self.plan_file.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"out": str(self.plan_file.resolve())}
        if destroy:
            options["destroy"] = IsFlagged
        code, out, err = self._call(lambda: self._terraform.plan(**options))
        if code not in (_PLAN_NO_CHANGES, _PLAN_CHANGES):
            raise _failure("plan", code, out, err)
        return summarize_plan(self._command("show", "-json", str(self.plan_file.resolve())))

    def apply_plan(self) -> None:
        """`terraform apply` of the saved plan (no prompt: the plan was already confirmed)."""
        if not self.plan_file.is_file():
            raise InfraError(f"terraform apply: no saved plan at {self.plan_file}; run the plan first")
        plan = str(self.plan_file.resolve())
        self._run("apply", lambda: self._terraform.apply(plan, var=None, var_file=None))
        self.plan_file.unlink()

    def outputs(self) -> dict[str, Any]:
        """Every root output's value, by name."""
        with self._env():
            values = self._terraform.output()
        if values is None:
            raise InfraError(f"terraform output in {self.root}: failed; has `kubeforge infra up` run here?")
        return {name: entry["value"] for name, entry in values.items()}

    def _command(self, *args: str) -> str:
        code, out, err = self._call(lambda: self._terraform.cmd(args[0], *args[1:], no_color=IsFlagged))
        if code != 0:
            raise _failure(args[0], code, out, err)
        return str(out)

    def _run(self, step: str, call: Any) -> None:
        code, out, err = self._call(call)
        if code != 0:
            raise _failure(step, code, out, err)

    def _call(self, call: Any) -> tuple[int, str, str]:
        with self._env(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The 'warn' method is deprecated", category=DeprecationWarning)
            code, out, err = call()
        return int(code), out or "", err or ""

    @contextlib.contextmanager
    def _env(self) -> Iterator[None]:
        """python-terraform passes os.environ to terraform; add the extra variables for one call."""
        saved = {name: os.environ.get(name) for name in self._environment}
        os.environ.update(self._environment)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _failure(step: str, code: int, out: str, err: str) -> InfraError:
    detail = (err.strip() or out.strip()).splitlines()
    tail = "\n".join(detail[-20:]) if detail else "(no output)"
    return InfraError(f"terraform {step} failed with exit code {code}:\n{tail}")


__all__ = ["BACKEND_FILE", "PLAN_FILE", "TerraformRunner"]
