"""The Node authorizer (`--authorization-mode=Node,...`): what a kubelet's credentials reach.

A kubelet authenticates as `system:node:<name>` in `system:nodes`. As Kubernetes' Node
authorizer, it may:
- get, and list/watch with a `metadata.name=<own name>` field selector, its own Node only;
- get pods bound to it, and list/watch pods only with `spec.nodeName=<own name>`;
- read the secrets, configmaps and persistent volume claims (and their volumes) that pods bound
  to it use, and request tokens for the service accounts those pods run as;
- use its own Lease in kube-node-lease;
- everything else the `system:node` rules grant (events, CSRs, services, reviews...).
Anything else is "no opinion", left to the next mode (RBAC). What a node may *write* is narrowed
further by the NodeRestriction admission plugin (admission/noderestriction.py).

Kubernetes keeps a graph of pods, nodes and their references; here the references are read
from storage on demand (a pod read for a pod, the namespace's pods for a secret), which is
correct at any moment and cheap at the sizes this server serves.
"""

from __future__ import annotations

from typing import Iterator

from . import rbac
from .authz import ALLOW, NO_OPINION, Attributes
from .selectors import parse_fields
from .storage import Storage

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
# resources whose access follows the node's pods (the graph), by (group, resource)
POD_REFERENCED = {("", "secrets"): "secret", ("", "configmaps"): "configmap",
                  ("", "persistentvolumeclaims"): "pvc"}
NO_RELATIONSHIP = "no relationship found between node '{node}' and this object"


def node_name(user: str, groups: list[str]) -> str | None:
    if NODES_GROUP in groups and user.startswith(NODE_PREFIX) and len(user) > len(NODE_PREFIX):
        return user[len(NODE_PREFIX):]
    return None


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def pod_references(pod: dict) -> set[tuple[str, str]]:
    """(kind, name) of every secret, configmap, PVC and service account a pod uses."""
    spec = pod.get("spec") or {}
    out: set[tuple[str, str]] = set()
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    out.add(("serviceaccount", sa))
    for ref in spec.get("imagePullSecrets") or []:
        if isinstance(ref, dict) and ref.get("name"):
            out.add(("secret", ref["name"]))
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        if isinstance(vol.get("secret"), dict):
            out.add(("secret", vol["secret"].get("secretName", "")))
        if isinstance(vol.get("configMap"), dict):
            out.add(("configmap", vol["configMap"].get("name", "")))
        if isinstance(vol.get("persistentVolumeClaim"), dict):
            out.add(("pvc", vol["persistentVolumeClaim"].get("claimName", "")))
        if isinstance(vol.get("ephemeral"), dict):
            out.add(("pvc", f'{(pod.get("metadata") or {}).get("name", "")}-{vol.get("name", "")}'))
        for source in (vol.get("projected") or {}).get("sources") or [] if isinstance(vol.get("projected"), dict) else []:
            if isinstance(source, dict):
                if isinstance(source.get("secret"), dict):
                    out.add(("secret", source["secret"].get("name", "")))
                if isinstance(source.get("configMap"), dict):
                    out.add(("configmap", source["configMap"].get("name", "")))
        for driver in ("csi", "azureFile", "cephfs", "rbd", "iscsi", "flexVolume", "scaleIO", "storageos"):
            ref = (vol.get(driver) or {}) if isinstance(vol.get(driver), dict) else {}
            for key in ("nodePublishSecretRef", "secretRef"):
                if isinstance(ref.get(key), dict):
                    out.add(("secret", ref[key].get("name", "")))
            if ref.get("secretName"):
                out.add(("secret", ref["secretName"]))
    for c in _containers(spec):
        for env in c.get("env") or []:
            source = (env.get("valueFrom") or {}) if isinstance(env, dict) else {}
            if isinstance(source.get("secretKeyRef"), dict):
                out.add(("secret", source["secretKeyRef"].get("name", "")))
            if isinstance(source.get("configMapKeyRef"), dict):
                out.add(("configmap", source["configMapKeyRef"].get("name", "")))
        for env_from in c.get("envFrom") or []:
            if isinstance(env_from, dict):
                if isinstance(env_from.get("secretRef"), dict):
                    out.add(("secret", env_from["secretRef"].get("name", "")))
                if isinstance(env_from.get("configMapRef"), dict):
                    out.add(("configmap", env_from["configMapRef"].get("name", "")))
    return out


def _selected_name(text: str, field: str, kind: str) -> str | None:
    """The value of `field=value` in a field selector, or None."""
    try:
        reqs = parse_fields(text, kind)
    except Exception:  # an unparseable selector scopes nothing
        return None
    for path, op, value in reqs:
        if path == field and op == "=":
            return value
    return None


class NodeAuthorizer:
    def __init__(self, storage: Storage):
        self.storage = storage
        self.rules = rbac.DEFAULT_ROLES["system:node"]

    async def decide(self, a: Attributes) -> tuple[str, str]:
        node = node_name(a.user, a.groups)
        if node is None:
            return NO_OPINION, ""
        if not a.resource_request:
            return NO_OPINION, ""
        deny = NO_OPINION, NO_RELATIONSHIP.format(node=node)
        key = (a.group, a.resource)
        if key == ("", "nodes"):
            return self._own_object(a, node, "Node", "metadata.name")
        if key == ("", "pods") and a.subresource is None and a.verb in ("get", "list", "watch"):
            if a.verb == "get":
                pod = await self.storage.get("pods", a.namespace, a.name or "") if a.namespace else None
                ok = pod is not None and (pod.get("spec") or {}).get("nodeName") == node
                return (ALLOW, "") if ok else deny
            if _selected_name(a.field_selector, "spec.nodeName", "Pod") == node:
                return ALLOW, ""
            return NO_OPINION, "can only list/watch pods with spec.nodeName field selector"
        if key == ("coordination.k8s.io", "leases"):
            # a create names no object yet: NodeRestriction checks the new lease's name
            ok = a.namespace == LEASE_NAMESPACE and (
                (a.verb == "create" and a.name is None) or
                (a.name == node and a.verb in ("get", "create", "update", "patch", "delete")))
            return (ALLOW, "") if ok else deny
        if key in POD_REFERENCED:
            return await self._referenced(a, node, POD_REFERENCED[key], deny)
        if key == ("", "persistentvolumes"):
            return await self._volume(a, node, deny)
        if key == ("", "serviceaccounts") and a.subresource == "token":
            if a.verb != "create":
                return deny
            return await self._referenced(a, node, "serviceaccount", deny, verbs=("create",))
        if any(rbac.rule_allows(r, a.verb, a.group, a.resource, a.subresource, a.name) for r in self.rules):
            return ALLOW, ""
        return NO_OPINION, ""

    @staticmethod
    def _own_object(a: Attributes, node: str, kind: str, field: str) -> tuple[str, str]:
        if a.verb in ("list", "watch"):
            if _selected_name(a.field_selector, field, kind) == node:
                return ALLOW, ""
            return NO_OPINION, f"can only list/watch its own {kind.lower()} with {field} field selector"
        if a.name == node or (a.verb == "create" and a.subresource is None):
            # creating any Node is allowed here; NodeRestriction keeps it to its own name
            return ALLOW, ""
        return NO_OPINION, NO_RELATIONSHIP.format(node=node)

    async def _pods_on(self, node: str, namespace: str | None) -> list[dict]:
        pods, _, _ = await self.storage.list(
            "pods", namespace, predicate=lambda p: (p.get("spec") or {}).get("nodeName") == node)
        return pods

    async def _referenced(self, a: Attributes, node: str, kind: str, deny: tuple[str, str],
                          verbs: tuple[str, ...] = ("get", "list", "watch")) -> tuple[str, str]:
        if a.verb not in verbs:
            return deny
        name = a.name
        if a.verb in ("list", "watch"):
            name = _selected_name(a.field_selector, "metadata.name", "")
        if not name or not a.namespace:
            return deny
        for pod in await self._pods_on(node, a.namespace):
            if (kind, name) in pod_references(pod):
                return ALLOW, ""
        return deny

    async def _volume(self, a: Attributes, node: str, deny: tuple[str, str]) -> tuple[str, str]:
        if a.verb != "get" or not a.name:
            return deny
        pv = await self.storage.get("persistentvolumes", None, a.name)
        claim = ((pv or {}).get("spec") or {}).get("claimRef") or {}
        if not claim.get("name") or not claim.get("namespace"):
            return deny
        for pod in await self._pods_on(node, claim["namespace"]):
            if ("pvc", claim["name"]) in pod_references(pod):
                return ALLOW, ""
        return deny
