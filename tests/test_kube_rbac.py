"""The RBAC authorizer of the Kubernetes API stand-ins: request attributes and rule matching as the API server does."""

from __future__ import annotations

import pytest
from kube_rbac import RBAC, request_attributes

ROLES = [
    {
        "kind": "Role",
        "metadata": {"name": "reader", "namespace": "ml"},
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"], "resourceNames": ["one"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    },
    {
        "kind": "ClusterRole",
        "metadata": {"name": "watcher"},
        "rules": [
            {"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["watch", "list"]},
        ],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "a", "namespace": "ml"},
        "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ml"}],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "ml"},
        "roleRef": {"kind": "ClusterRole", "name": "watcher"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ml"}],
    },
]
USER = "system:serviceaccount:ml:sa"


@pytest.mark.parametrize(
    ("method", "path", "attributes"),
    [
        ("GET", "/api/v1/nodes", ("list", "", "nodes", "", "", "")),
        ("GET", "/api/v1/namespaces/ml/pods/p1/log", ("get", "", "pods", "log", "ml", "p1")),
        ("GET", "/apis/batch/v1/namespaces/ml/jobs?watch=true", ("watch", "batch", "jobs", "", "ml", "")),
        ("DELETE", "/apis/batch/v1/namespaces/ml/jobs", ("deletecollection", "batch", "jobs", "", "ml", "")),
        (
            "PATCH",
            "/apis/kubeflow.org/v1/namespaces/ml/pytorchjobs/x",
            ("patch", "kubeflow.org", "pytorchjobs", "", "ml", "x"),
        ),
        (
            "PUT",
            "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/m",
            ("update", "serving.kserve.io", "inferenceservices", "", "ml", "m"),
        ),
    ],
)
def test_request_attributes_follow_the_api_servers_request_info(
    method: str, path: str, attributes: tuple[str, ...]
) -> None:
    found = request_attributes(method, path)
    assert (found.verb, found.group, found.resource, found.subresource, found.namespace, found.name) == attributes


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/apis/batch/v1/namespaces/ml/jobs/one", True),
        ("GET", "/apis/batch/v1/namespaces/ml/jobs/two", False),  # resourceNames
        ("GET", "/apis/batch/v1/namespaces/ml/jobs", False),  # list is not get
        ("GET", "/api/v1/namespaces/ml/pods/p/log", True),
        ("GET", "/api/v1/namespaces/ml/pods/p", False),  # pods/log does not grant pods
        ("GET", "/api/v1/namespaces/ml/configmaps?watch=1", True),  # a ClusterRole bound in ml
        ("GET", "/api/v1/namespaces/other/configmaps", False),  # ... only in ml
        ("GET", "/api/v1/configmaps", False),  # ... never cluster-wide
    ],
)
def test_rules_grant_exactly_what_they_name(method: str, path: str, allowed: bool) -> None:
    rbac = RBAC.from_documents(ROLES)
    assert rbac.allows(USER, request_attributes(method, path)) is allowed
    assert rbac.allows("system:serviceaccount:other:sa", request_attributes(method, path)) is False
