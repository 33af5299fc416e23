"""Moved to `kubeforge.kube_client` (kept for the scheduler's kubernetes backend and server)."""

from kubeforge.kube_client import default_api_client

__all__ = ["default_api_client"]
