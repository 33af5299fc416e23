"""What a Terraform plan would do, read from `terraform show -json PLANFILE`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubeforge.errors import InfraError

_ACTION_KINDS = {
    ("create",): "add",
    ("update",): "change",
    ("delete",): "destroy",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
}


@dataclass(frozen=True)
class PlanSummary:
    """Resource addresses a plan adds, changes, replaces and destroys, and whether outputs change."""

    add: tuple[str, ...] = ()
    change: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: tuple[str, ...] = ()
    output_changes: tuple[str, ...] = field(default=())

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would change anything (resources or outputs)."""
        return bool(self.add or self.change or self.replace or self.destroy or self.output_changes)

    def headline(self) -> str:
        """Terraform's own one-line count: replacements count as one add and one destroy."""
        adds = len(self.add) + len(self.replace)
        destroys = len(self.destroy) + len(self.replace)
        return f"Plan: {adds} to add, {len(self.change)} to change, {destroys} to destroy."

    def describe(self) -> str:
        """A readable summary: the headline, then each resource address under its action."""
        lines = [self.headline()]
        for title, addresses in (
            ("add", self.add),
            ("change", self.change),
            ("replace", self.replace),
            ("destroy", self.destroy),
            ("output", self.output_changes),
        ):
            lines.extend(f"  {title:<8} {address}" for address in addresses)
        return "\n".join(lines)


def summarize_plan(plan_json: str) -> PlanSummary:
    """Summarize the JSON of `terraform show -json PLANFILE` (format version 0.x or 1.x)."""
    try:
        plan: dict[str, Any] = json.loads(plan_json)
    except json.JSONDecodeError as exc:
        raise InfraError(f"terraform show -json: output is not JSON ({exc}); is the plan file complete?") from exc
    buckets: dict[str, list[str]] = {"add": [], "change": [], "replace": [], "destroy": []}
    for resource in plan.get("resource_changes") or []:
        kind = _ACTION_KINDS.get(tuple(resource["change"]["actions"]))
        if kind is not None:
            buckets[kind].append(resource["address"])
    outputs = [
        name for name, change in (plan.get("output_changes") or {}).items() if change["actions"] not in (["no-op"], [])
    ]
    return PlanSummary(
        add=tuple(buckets["add"]),
        change=tuple(buckets["change"]),
        replace=tuple(buckets["replace"]),
        destroy=tuple(buckets["destroy"]),
        output_changes=tuple(sorted(outputs)),
    )


__all__ = ["PlanSummary", "summarize_plan"]
