"""RBAC authorizer and the default cluster roles every cluster starts with.

Decisions follow Kubernetes' RBAC rules: a request is allowed when a (Cluster)RoleBinding whose
subjects match the user grants a rule covering verb, API group, resource[/subresource] and name
(or, for non-resource requests, the URL). Roles and bindings are read from storage with a
one-second cache.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .storage import Storage

SUPERUSER_GROUP = "system:masters"
# default roles carrying "true" get back any of this file's rules they lack when a server starts
# (rules are added, never removed, as Kubernetes reconciles); "false" leaves a role alone
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"

R = dict[str, Any]


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
         urls: list[str] | None = None) -> R:
    out: R = {"verbs": verbs}
    if urls is not None:
        out["nonResourceURLs"] = urls
    else:
        out["apiGroups"], out["resources"] = groups or [""], resources or ["*"]
    return out


READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = ["*"]

# The user-facing roles, as Kubernetes defines them (for the resources Kubernetes names, served
# here or not): `view` reads a namespace's workloads but never Secrets (they hold credentials;
# reading them would be escalation); `edit` also writes them and reads/writes Secrets, but not
# RBAC objects, nor Endpoints/EndpointSlices (which could redirect a Service's traffic);
# `admin` adds Roles and RoleBindings in the namespace.
VIEW = [
    rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims",
                      "persistentvolumeclaims/status", "pods", "pods/log", "pods/status",
                      "replicationcontrollers", "replicationcontrollers/scale",
                      "replicationcontrollers/status", "serviceaccounts", "services", "services/status",
                      "bindings", "events", "limitranges", "namespaces", "namespaces/status",
                      "resourcequotas", "resourcequotas/status"]),
    rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                          "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                          "replicasets/status", "statefulsets", "statefulsets/scale",
                          "statefulsets/status"]),
    rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
]
EDIT = VIEW + [
    rule(["impersonate"], [""], ["serviceaccounts"]),
    rule(["create"], [""], ["serviceaccounts/token", "pods/eviction"]),
    rule(READ + WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                              "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                              "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                              "services/proxy"]),
    rule(READ + WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback",
                                  "deployments/scale", "replicasets", "replicasets/scale", "statefulsets",
                                  "statefulsets/scale"]),
    rule(READ + WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    rule(READ + WRITE, ["batch"], ["cronjobs", "jobs"]),
    rule(READ + WRITE, ["policy"], ["poddisruptionbudgets"]),
    rule(READ + WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
]
ADMIN = EDIT + [
    rule(READ + WRITE, ["rbac.authorization.k8s.io"], ["roles", "rolebindings"]),
    rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
]
DEFAULT_ROLES: dict[str, list[R]] = {
    "cluster-admin": [rule(ALL, ["*"], ["*"]), rule(ALL, urls=["*"])],
    "system:discovery": [rule(["get"], urls=["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                                             "/livez", "/readyz", "/openapi", "/openapi/*", "/version",
                                             "/version/"])],
    "system:public-info-viewer": [rule(["get"], urls=["/healthz", "/livez", "/readyz", "/version", "/version/"])],
    "system:basic-user": [rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews",
                                                                      "selfsubjectrulesreviews"]),
                          rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])],
    "view": VIEW,
    "edit": EDIT,
    "admin": ADMIN,
    "system:kube-scheduler": [
        rule(READ, [""], ["pods", "nodes", "namespaces", "services", "persistentvolumeclaims"]),
        rule(["create"], [""], ["pods/binding", "bindings"]),
        rule(["delete"], [""], ["pods"]),  # preemption victims, as upstream's role allows
        rule(["patch", "update"], [""], ["pods/status"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule(ALL, ["coordination.k8s.io"], ["leases"]),
        rule(READ, ["apps"], ["replicasets", "daemonsets", "deployments"]),
        # its secure port delegates authentication and authorization, as upstream's role allows
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])],
    "system:kube-controller-manager": [rule(ALL, ["*"], ["*"])],
    "system:monitoring": [rule(["get"], urls=["/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz",
                                              "/readyz/*", "/metrics", "/metrics/slis"])],
    "system:node": [
        rule(READ, [""], ["nodes", "pods", "services", "endpoints", "configmaps", "secrets",
                          "namespaces", "serviceaccounts"]),
        rule(["create", "update", "patch", "delete"], [""], ["nodes", "nodes/status", "pods",
                                                             "pods/status"]),
        rule(["create"], [""], ["serviceaccounts/token"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule(ALL, ["coordination.k8s.io"], ["leases"]),
        rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(["create"], [""], ["pods/eviction"]),
        rule(["update", "patch"], [""], ["persistentvolumeclaims/status"]),
        rule(["get"], [""], ["persistentvolumes"]),
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"]),
        rule(READ, ["storage.k8s.io"], ["storageclasses", "csidrivers", "csinodes", "volumeattachments"]),
        rule(READ, ["node.k8s.io"], ["runtimeclasses"])],
    # kube-apiserver's delegated authentication/authorization role (webhook authn/authz)
    "system:auth-delegator": [rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                              rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])],
    "system:node-proxier": [
        rule(READ, [""], ["services", "endpoints", "nodes"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(["create", "patch", "update"], [""], ["events"])],
    "system:node-bootstrapper": [rule(["create", "get", "list", "watch"], ["certificates.k8s.io"],
                                      ["certificatesigningrequests"])],
}
DEFAULT_BINDINGS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [("Group", SUPERUSER_GROUP)]),
    "system:discovery": ("system:discovery", [("Group", "system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer", [("Group", "system:authenticated")]),
    "system:basic-user": ("system:basic-user", [("Group", "system:authenticated")]),
    "system:kube-scheduler": ("system:kube-scheduler", [("User", "system:kube-scheduler")]),
    "system:monitoring": ("system:monitoring", [("Group", "system:monitoring")]),
    "system:kube-controller-manager": ("system:kube-controller-manager",
                                       [("User", "system:kube-controller-manager")]),
    # no subjects, as in Kubernetes: kubelets get these rules from the Node authorizer, which
    # also scopes them to the node's own objects (nodeauthz.py)
    "system:node": ("system:node", []),
    "system:node-proxier": ("system:node-proxier", [("User", "system:kube-proxy")]),
    "system:node-bootstrapper": ("system:node-bootstrapper", [("Group", "system:bootstrappers")]),
}


def _match(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def rule_allows(r: R, verb: str, group: str, resource: str, sub: str | None, name: str | None) -> bool:
    if not _match(r.get("verbs") or [], verb) or not _match(r.get("apiGroups") or [], group):
        return False
    full = f"{resource}/{sub}" if sub else resource
    res = r.get("resources") or []
    if not ("*" in res or full in res or (sub and f"*/{sub}" in res) or (not sub and resource in res)):
        return False
    names = r.get("resourceNames") or []
    return not names or (name is not None and name in names)


def url_allows(r: R, verb: str, path: str) -> bool:
    if not _match(r.get("verbs") or [], verb):
        return False
    for u in r.get("nonResourceURLs") or []:
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


class Authorizer:
    def __init__(self, storage: Storage, ttl: float = 1.0):
        self.storage = storage
        self.ttl = ttl
        self._cache: tuple[float, Any] | None = None

    async def _snapshot(self) -> tuple[list, list, dict, dict]:
        now = time.monotonic()
        if self._cache and now - self._cache[0] < self.ttl:
            return self._cache[1]
        crbs, _, _ = await self.storage.list("clusterrolebindings", None)
        rbs, _, _ = await self.storage.list("rolebindings", None)
        crs, _, _ = await self.storage.list("clusterroles", None)
        roles, _, _ = await self.storage.list("roles", None)
        snap = (crbs, rbs, {c["metadata"]["name"]: c.get("rules") or [] for c in crs},
                {(r["metadata"]["namespace"], r["metadata"]["name"]): r.get("rules") or [] for r in roles})
        self._cache = (now, snap)
        return snap

    @staticmethod
    def _subject_matches(subjects: list[dict], user: str, groups: list[str]) -> bool:
        for s in subjects or []:
            kind, name = s.get("kind"), s.get("name")
            if kind == "User" and name == user:
                return True
            if kind == "Group" and name in groups:
                return True
            if kind == "ServiceAccount" and user == f"system:serviceaccount:{s.get('namespace')}:{name}":
                return True
        return False

    async def rules_for(self, user: str, groups: list[str], namespace: str | None) -> list[R]:
        crbs, rbs, crs, roles = await self._snapshot()
        out: list[R] = []
        for b in crbs:
            if self._subject_matches(b.get("subjects"), user, groups):
                out += crs.get((b.get("roleRef") or {}).get("name"), [])
        if namespace:
            for b in rbs:
                if b["metadata"].get("namespace") != namespace:
                    continue
                if not self._subject_matches(b.get("subjects"), user, groups):
                    continue
                ref = b.get("roleRef") or {}
                if ref.get("kind") == "ClusterRole":
                    out += crs.get(ref.get("name"), [])
                else:
                    out += roles.get((namespace, ref.get("name")), [])
        return out

    async def allowed(self, user: str, groups: list[str], verb: str, group: str, resource: str,
                      sub: str | None, namespace: str | None, name: str | None) -> bool:
        if SUPERUSER_GROUP in groups:
            return True
        return any(rule_allows(r, verb, group, resource, sub, name)
                   for r in await self.rules_for(user, groups, namespace))

    async def allowed_url(self, user: str, groups: list[str], verb: str, path: str) -> bool:
        if SUPERUSER_GROUP in groups:
            return True
        return any(url_allows(r, verb, path) for r in await self.rules_for(user, groups, None))


def default_objects() -> list[tuple[str, dict]]:
    """(plural, object) for the default ClusterRoles and ClusterRoleBindings."""
    meta = {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {AUTOUPDATE: "true"}}
    out: list[tuple[str, dict]] = []
    for name, rules in DEFAULT_ROLES.items():
        out.append(("clusterroles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                     "metadata": {"name": name, **copy.deepcopy(meta)},
                                     "rules": copy.deepcopy(rules)}))
    for name, (role, subjects) in DEFAULT_BINDINGS.items():
        out.append(("clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, **copy.deepcopy(meta)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            **({"subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": k, "name": n}
                             for k, n in subjects]} if subjects else {})}))
    return out
