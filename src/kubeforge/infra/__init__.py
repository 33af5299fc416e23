"""Infrastructure: Terraform through python-terraform (`kubeforge infra`), and the cluster record it leaves."""

from kubeforge.infra.binary import check_terraform, find_terraform
from kubeforge.infra.config import config_path, load_config
from kubeforge.infra.plan import PlanSummary, summarize_plan
from kubeforge.infra.runner import TerraformRunner
from kubeforge.infra.workflow import TARGETS, InfraOptions, prepare, record_cluster

__all__ = [
    "TARGETS",
    "InfraOptions",
    "PlanSummary",
    "TerraformRunner",
    "check_terraform",
    "config_path",
    "find_terraform",
    "load_config",
    "prepare",
    "record_cluster",
    "summarize_plan",
]
