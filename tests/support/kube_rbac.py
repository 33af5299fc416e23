"""Kubernetes RBAC for the loopback API stand-ins: authorize each request as the API server would.

`RBAC.from_documents` loads Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (as `helm template`
renders them); `request_attributes` turns a REST path and HTTP method into the (verb, API group, resource,
subresource, namespace, name) the API server's RBAC authorizer checks; `forbidden_status` is the Status body
the API server answers a denied request with. Bearer tokens identify service accounts: `token_for` issues one.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "kubeforge"
HELM = REPO / ".tools" / "bin" / "helm"


@dataclass(frozen=True)
class RequestAttributes:
    """What RBAC decides on: the request's verb and the object it touches."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def resource_path(self) -> str:
        """`pods/log` for a subresource, else the resource."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(method: str, path: str) -> RequestAttributes:
    """The RBAC attributes of a REST request (after k8s.io/apiserver's RequestInfoFactory)."""
    parsed = urlparse(path)
    parts = [p for p in parsed.path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watch = parse_qs(parsed.query).get("watch", ["false"])[0] in ("true", "1")
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if method in verbs:
        verb = verbs[method]
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = "watch" if watch else ("get" if name else "list")
    return RequestAttributes(verb, group, resource, subresource, namespace, name)


def _rule_allows(rule: dict[str, Any], request: RequestAttributes) -> bool:
    def matches(values: Iterable[str], wanted: str) -> bool:
        return "*" in values or wanted in values

    names = rule.get("resourceNames") or []
    return (
        matches(rule.get("apiGroups") or [], request.group)
        and matches(rule.get("resources") or [], request.resource_path)
        and matches(rule.get("verbs") or [], request.verb)
        and (not names or request.name in names)
    )


@dataclass
class RBAC:
    """Roles, ClusterRoles and their bindings, and the bearer tokens of service accounts."""

    roles: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    cluster_roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, documents: Iterable[dict[str, Any] | None]) -> RBAC:
        """Load the RBAC objects among Kubernetes manifests; other kinds are ignored."""
        rbac = cls()
        for doc in documents:
            kind = (doc or {}).get("kind")
            if doc is None or kind is None:
                continue
            meta = doc["metadata"]
            if kind == "Role":
                rbac.roles[(meta["namespace"], meta["name"])] = doc.get("rules") or []
            elif kind == "ClusterRole":
                rbac.cluster_roles[meta["name"]] = doc.get("rules") or []
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                rbac.bindings.append(doc)
        return rbac

    def token_for(self, namespace: str, service_account: str) -> str:
        """A bearer token that authenticates as the service account."""
        user = f"system:serviceaccount:{namespace}:{service_account}"
        token = f"token-{namespace}-{service_account}"
        self.tokens[token] = user
        return token

    def user_for(self, authorization: str | None) -> str | None:
        """The user a request's Authorization header authenticates, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.tokens.get(authorization.removeprefix("Bearer "))

    def allows(self, user: str, request: RequestAttributes) -> bool:
        """Whether any binding of `user` grants the request (RBAC is purely additive)."""
        for binding in self.bindings:
            if not any(_subject_is(subject, user) for subject in binding.get("subjects") or []):
                continue
            scope = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
            if scope and scope != request.namespace:
                continue
            ref = binding["roleRef"]
            rules = (
                self.cluster_roles.get(ref["name"], [])
                if ref["kind"] == "ClusterRole"
                else self.roles.get((scope, ref["name"]), [])
            )
            if any(_rule_allows(rule, request) for rule in rules):
                return True
        return False


def _subject_is(subject: dict[str, Any], user: str) -> bool:
    if subject.get("kind") == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace', '')}:{subject['name']}"
    return subject.get("kind") == "User" and subject.get("name") == user


def forbidden_status(user: str, request: RequestAttributes) -> dict[str, Any]:
    """The API server's 403 body for a request RBAC denies."""
    qualified = f"{request.resource}.{request.group}" if request.group else request.resource
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {request.verb} resource "{request.resource_path}" '
        f'in API group "{request.group}" {where}'
    )
    details: dict[str, Any] = {"group": request.group, "kind": request.resource}
    if request.name:
        details["name"] = request.name
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


def unauthorized_status() -> dict[str, Any]:
    """The API server's 401 body for a request without valid credentials."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def render_chart(namespace: str, *values: str) -> list[dict[str, Any]]:
    """`helm template` of the kubeforge chart into `namespace` with `--set` values; skips without helm."""
    helm = str(HELM) if HELM.is_file() else shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed; run `make tools`")
    return [doc for doc in yaml.safe_load_all(_helm_template(helm, namespace, values)) if doc]


@functools.cache
def _helm_template(helm: str, namespace: str, values: tuple[str, ...]) -> str:
    sets = [arg for value in values for arg in ("--set", value)]
    result = subprocess.run(
        [helm, "template", "kubeforge", str(CHART), "--namespace", namespace, *sets], capture_output=True, text=True
    )
    assert result.returncode == 0, f"helm template failed: {result.stderr}"
    return result.stdout


def chart_rbac(namespace: str, *values: str) -> RBAC:
    """The RBAC the kubeforge chart renders into `namespace`."""
    return RBAC.from_documents(render_chart(namespace, *values))


__all__ = [
    "RBAC",
    "RequestAttributes",
    "chart_rbac",
    "forbidden_status",
    "render_chart",
    "request_attributes",
    "unauthorized_status",
]
