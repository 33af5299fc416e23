"""summarize_plan on the JSON shape of `terraform show -json PLANFILE` (format 1.x)."""

from __future__ import annotations

import json

import pytest

from kubeforge.errors import InfraError
from kubeforge.infra.plan import summarize_plan


def _plan(*changes: tuple[str, list[str]], outputs: dict[str, list[str]] | None = None) -> str:
    return json.dumps(
        {
            "format_version": "0.2",
            "resource_changes": [{"address": address, "change": {"actions": actions}} for address, actions in changes],
            "output_changes": {name: {"actions": actions} for name, actions in (outputs or {}).items()},
        }
    )


@pytest.mark.parametrize(
    ("changes", "headline"),
    [
        ([("aws_vpc.this", ["create"])], "Plan: 1 to add, 0 to change, 0 to destroy."),
        ([("aws_vpc.this", ["update"]), ("aws_subnet.a", ["no-op"])], "Plan: 0 to add, 1 to change, 0 to destroy."),
        ([("aws_vpc.this", ["delete", "create"])], "Plan: 1 to add, 0 to change, 1 to destroy."),
        ([("aws_vpc.this", ["delete"]), ("aws_subnet.a", ["read"])], "Plan: 0 to add, 0 to change, 1 to destroy."),
    ],
)
def test_headline_counts_like_terraform(changes: list[tuple[str, list[str]]], headline: str) -> None:
    assert summarize_plan(_plan(*changes)).headline() == headline


def test_describe_lists_every_address_under_its_action() -> None:
    summary = summarize_plan(
        _plan(("aws_vpc.this", ["create"]), ("aws_eks_cluster.this", ["delete", "create"]), outputs={"x": ["create"]})
    )
    text = summary.describe()
    assert "  add      aws_vpc.this" in text
    assert "  replace  aws_eks_cluster.this" in text
    assert "  output   x" in text
    assert summary.has_changes


def test_no_op_plan_has_no_changes() -> None:
    summary = summarize_plan(_plan(("aws_vpc.this", ["no-op"]), outputs={"x": ["no-op"]}))
    assert not summary.has_changes


def test_output_that_is_not_json_is_an_infra_error() -> None:
    with pytest.raises(InfraError, match="not JSON"):
        summarize_plan("Error: plan file is truncated")
