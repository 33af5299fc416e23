"""Every resource, data source and provider block under terraform/ against its provider's real schema.

The google, kubernetes, helm, null, local and docker schemas come from the Terraform CDK packages on npm
(cached in .tools/provider-schemas/ by `make tools`), hashicorp/aws's from `terraform providers schema -json`
with the machine's provider mirror. A fixture with one breakage per block proves the check catches each kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from infra_tools import REPO, TOOLS

from kubeforge_dev.hcl_checks import configuration_folders
from kubeforge_dev.provider_schemas import CDKTF_PACKAGES, load_schemas, schema_from_jsii
from kubeforge_dev.schema_check import check_folder

pytestmark = pytest.mark.infra
BROKEN = REPO / "tests" / "infra" / "fixtures" / "schema_broken"


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    found = load_schemas(TOOLS / "provider-schemas")
    if not {*CDKTF_PACKAGES} <= {*found}:
        pytest.skip("provider schemas are not cached; run `make tools`")
    return found


@pytest.mark.parametrize("folder", configuration_folders(REPO / "terraform"), ids=lambda p: p.name)
def test_every_configuration_matches_its_provider_schemas(folder: Path, schemas: dict[str, dict[str, Any]]) -> None:
    report = check_folder(folder, schemas)
    assert report.problems == []
    allowed_unchecked = {"resource kind_cluster"}  # tehcyx/kind publishes no schema package
    if "aws" not in schemas:
        allowed_unchecked |= {entry for entry in report.unchecked if " aws_" in entry or entry == "provider aws"}
    assert set(report.unchecked) <= allowed_unchecked


def test_gke_and_platform_modules_are_checked_block_by_block(schemas: dict[str, dict[str, Any]]) -> None:
    for module in ("gke", "platform"):
        report = check_folder(REPO / "terraform" / "modules" / module, schemas)
        assert report.unchecked == [] and report.problems == []
    cluster = schemas["google"]["resource_schemas"]["google_container_cluster"]
    assert cluster["attributes"]["name"]["required"] is True
    assert cluster["block_types"]["node_config"]["max_items"] == 1
    assert "max_items" not in cluster["block_types"]["node_pool"]  # a repeatable block


def test_eks_module_is_checked_against_the_real_aws_provider(schemas: dict[str, dict[str, Any]]) -> None:
    if "aws" not in schemas:
        pytest.skip("no hashicorp/aws schema cached (needs the provider mirror; see DEVELOPERS.md)")
    report = check_folder(REPO / "terraform" / "modules" / "eks", schemas)
    assert report.problems == [] and report.unchecked == []
    template = schemas["aws"]["resource_schemas"]["aws_launch_template"]
    assert "http_tokens" in template["block_types"]["metadata_options"]["block"]["attributes"]


def test_broken_fixture_reports_each_breakage_by_name(schemas: dict[str, dict[str, Any]]) -> None:
    report = check_folder(BROKEN, schemas, label="fx")
    google, kubernetes, helm = (
        f"({schemas[p]['provider']} {schemas[p]['version']})" for p in ("google", "kubernetes", "helm")
    )
    assert report.problems == [
        "fx/main.tf: resource google_storage_bucket.missing_location: location: required attribute is missing"
        f" {google}",
        "fx/main.tf: resource google_container_node_pool.misspelt: node_config.machine_typ: no such attribute or"
        f" block; did you mean machine_type? {google}",
        "fx/main.tf: resource google_container_node_pool.misspelt: management: at most one `management` block is"
        f" allowed, found 2 {google}",
        "fx/main.tf: resource google_container_cluster.nesting: resource_labels: is an attribute; write"
        f" `resource_labels = ...`, not a block {google}",
        "fx/main.tf: resource google_container_cluster.nesting: workload_identity_config: is a block; write"
        f" `workload_identity_config {{ ... }}`, not `workload_identity_config = ...` {google}",
        "fx/main.tf: resource google_container_cluster.nesting: master_authorized_networks_config.cidr_blocks."
        f"cidr_blok: no such attribute or block; did you mean cidr_block? {google}",
        "fx/main.tf: resource google_container_cluster.nesting: master_authorized_networks_config.cidr_blocks."
        f"cidr_block: required attribute is missing {google}",
        f"fx/main.tf: resource kubernetes_service_v1.no_spec: spec: required block is missing {kubernetes}",
        f"fx/main.tf: resource google_container_clustre.unknown_type: no such resource type in {google[1:-1]}",
        "fx/main.tf: provider helm: kubernetes: is a block; write `kubernetes { ... }`, not `kubernetes = ...`"
        f" {helm}",
    ]
    assert report.unchecked == ["resource kind_cluster"]


def test_jsii_structs_become_attributes_and_nested_blocks() -> None:
    def prop(name: str, tf_name: str, jsii_type: dict[str, Any], summary: str, optional: bool = True) -> dict[str, Any]:
        remarks = f"Docs at Terraform Registry: {{@link https://registry.terraform.io/x#{tf_name} X#{tf_name}}}"
        return {"name": name, "type": jsii_type, "optional": optional, "docs": {"summary": summary, "remarks": remarks}}

    link = "https://registry.terraform.io/providers/acme/widget/1.2.3/docs/resources/thing"
    jsii = {
        "types": {
            "p.thing.Thing": {
                "kind": "class",
                "docs": {"summary": f"Represents a {{@link {link} widget_thing}}."},
                "initializer": {"parameters": [{"name": "config", "type": {"fqn": "p.thing.ThingConfig"}}]},
            },
            "p.thing.ThingConfig": {
                "kind": "interface",
                "datatype": True,
                "properties": [
                    prop("diskSizeGb", "disk_size_gb", {"primitive": "number"}, "Disk size.", optional=False),
                    prop("settings", "settings", {"fqn": "p.thing.ThingSettings"}, "settings block."),
                    prop(
                        "rule",
                        "rule",
                        {
                            "union": {
                                "types": [
                                    {"fqn": "cdktf.IResolvable"},
                                    {"collection": {"kind": "array", "elementtype": {"fqn": "p.thing.ThingSettings"}}},
                                ]
                            }
                        },
                        "rule block.",
                    ),
                ],
            },
            "p.thing.ThingSettings": {
                "kind": "interface",
                "datatype": True,
                "properties": [prop("mode", "mode", {"primitive": "string"}, "Mode.", optional=False)],
            },
        }
    }
    schema = schema_from_jsii(jsii)
    assert (schema["provider"], schema["version"]) == ("acme/widget", "1.2.3")
    thing = schema["resource_schemas"]["widget_thing"]
    assert thing["attributes"] == {"disk_size_gb": {"required": True, "optional": False}}
    assert thing["block_types"]["settings"]["max_items"] == 1
    assert "max_items" not in thing["block_types"]["rule"]
    assert thing["block_types"]["rule"]["block"]["attributes"]["mode"]["required"] is True
