"""The Kubernetes API client factory shared by the launch layer, the deploy targets and the scheduler."""

from __future__ import annotations

import os

from kubernetes import client

from kubeforge.errors import InputError


def default_api_client() -> client.ApiClient:
    """An API client from the in-cluster service account, else from the local kubeconfig."""
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            # KUBECONFIG is read now, not when the kubernetes package was imported.
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        except (config.ConfigException, FileNotFoundError) as exc:
            raise InputError(
                f"no Kubernetes credentials ({exc}): run inside a cluster or point KUBECONFIG at a kubeconfig"
            ) from exc
    return client.ApiClient()


__all__ = ["default_api_client"]
