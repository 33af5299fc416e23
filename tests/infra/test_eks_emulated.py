"""The eks module with the real hashicorp/aws provider (5.100.0 from the machine's filesystem mirror):
`terraform validate` against the real provider schema, then `kubeforge infra up` and `down` of the whole
module against moto's server on loopback, which stands in for AWS (the provider's `endpoints` block points
every service it uses at moto; test credentials)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from infra_tools import REPO, TERRAFORM, moto_server, provider_mirror, require

from kubeforge.cli import cli
from kubeforge.infra.config import load_config
from kubeforge.infra.workflow import provider_mirror_config

pytestmark = pytest.mark.infra
EKS = REPO / "terraform" / "modules" / "eks"

# The provider block of terraform/envs/aws, with the eks module alone (the platform's providers cannot be
# installed here); `--aws-endpoint` sets aws_endpoint exactly as it does for envs/aws.
ROOT = """
terraform {{
  required_version = ">= 1.0, < 2.0"
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }}
  }}
}}

variable "aws_endpoint" {{
  type    = string
  default = ""
}}

locals {{
  emulated = var.aws_endpoint != ""
}}

provider "aws" {{
  region                      = "us-east-1"
  access_key                  = local.emulated ? "test" : null
  secret_key                  = local.emulated ? "test" : null
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  s3_use_path_style           = local.emulated
  dynamic "endpoints" {{
    for_each = local.emulated ? [var.aws_endpoint] : []
    content {{
      ec2  = endpoints.value
      ecr  = endpoints.value
      eks  = endpoints.value
      iam  = endpoints.value
      kms  = endpoints.value
      logs = endpoints.value
      s3   = endpoints.value
      sts  = endpoints.value
    }}
  }}
}}

module "eks" {{
  source             = "{module}"
  name               = "kf-emulated"
  availability_zones = ["us-east-1a", "us-east-1b"]
}}

output "artifact_root" {{
  value = module.eks.artifact_root
}}

output "image_registry" {{
  value = module.eks.image_registry
}}

output "gpu_node_group" {{
  value = module.eks.node_groups.gpu
}}
"""


def test_eks_module_validates_with_the_real_provider(tmp_path: Path) -> None:
    terraform = require(TERRAFORM)
    env = {"TF_CLI_CONFIG_FILE": str(provider_mirror_config(provider_mirror(), tmp_path)), "PATH": "/usr/bin:/bin"}
    work = tmp_path / "eks"
    work.mkdir()
    for tf_file in EKS.glob("*.tf"):
        (work / tf_file.name).write_text(tf_file.read_text())
    subprocess.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env, check=True)
    result = subprocess.run(
        [terraform, "validate", "-json", "-no-color"], cwd=work, env=env, capture_output=True, text=True
    )
    report = json.loads(result.stdout)
    assert report["valid"], report["diagnostics"]


def test_infra_up_and_down_against_moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = provider_mirror()
    monkeypatch.setenv("KUBEFORGE_TERRAFORM", str(require(TERRAFORM)))
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(ROOT.format(module=EKS))
    with moto_server() as endpoint:
        common = ["--target", "aws", "--dir", str(root), "--provider-mirror", str(mirror), "--aws-endpoint", endpoint]
        up = CliRunner().invoke(cli, ["infra", "up", *common, "--yes"], catch_exceptions=False)
        assert up.exit_code == 0, up.output
        assert "Plan: 42 to add, 0 to change, 0 to destroy." in up.output
        assert "add      module.eks.aws_eks_node_group.gpu" in up.output

        # What terraform created is really there, read back through boto3 from the emulated API.
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        eks = session.client("eks", endpoint_url=endpoint)
        gpu = eks.describe_nodegroup(clusterName="kf-emulated", nodegroupName="kf-emulated-gpu")["nodegroup"]
        assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
        # Both node groups boot from the launch template that requires IMDSv2 with a hop limit of 1.
        ec2 = session.client("ec2", endpoint_url=endpoint)
        for group in ("cpu", "gpu"):
            template = eks.describe_nodegroup(clusterName="kf-emulated", nodegroupName=f"kf-emulated-{group}")[
                "nodegroup"
            ]["launchTemplate"]
            version = ec2.describe_launch_template_versions(LaunchTemplateId=template["id"])["LaunchTemplateVersions"]
            metadata = version[0]["LaunchTemplateData"]["MetadataOptions"]
            assert (metadata["HttpTokens"], metadata["HttpPutResponseHopLimit"]) == ("required", 1)
        bucket = load_config()["artifact_root"].removeprefix("s3://").split("/")[0]
        s3 = session.client("s3", endpoint_url=endpoint)
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        assert (
            session.client("ecr", endpoint_url=endpoint).describe_repositories()["repositories"][0]["repositoryName"]
            == "kf-emulated/kubeforge"
        )

        down = CliRunner().invoke(cli, ["infra", "down", *common, "--yes"], catch_exceptions=False)
        assert down.exit_code == 0, down.output
        assert "Plan: 0 to add, 0 to change, 42 to destroy." in down.output
        assert eks.list_clusters()["clusters"] == []
        assert s3.list_buckets()["Buckets"] == []
    assert load_config() == {}
