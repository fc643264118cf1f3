"""NodeRestriction: a kubelet writes only what is its own (kube-apiserver's plugin and wording).

The Node authorizer (nodeauthz.py) decides what a node may reach; this plugin looks at the
objects themselves: a node creates only mirror pods bound to itself, deletes and updates the
status of only its pods, evicts only its pods, writes only its own Node (never its taints once
registered, nor `node-restriction.kubernetes.io/` labels) and only its own Lease.
"""

from __future__ import annotations

from ..nodeauthz import node_name
from ..validation import MIRROR_ANNOTATION
from . import Attributes, Base, forbidden

RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"


def _node_of(obj: dict | None) -> str:
    return ((obj or {}).get("spec") or {}).get("nodeName") or ""


class NodeRestriction(Base):
    name = "NodeRestriction"

    async def validate(self, a: Attributes) -> None:
        node = node_name(a.req.user, a.req.groups)
        if node is None:
            return
        check = {("", "pods"): self._pod, ("", "nodes"): self._node,
                 ("coordination.k8s.io", "leases"): self._lease}.get(a.resource)
        if check:
            await check(a, node)

    async def _pod(self, a: Attributes, node: str) -> None:
        if a.sub == "status":
            if _node_of(a.old) != node:
                raise forbidden(a, f'node "{node}" can only update pod status for pods with spec.nodeName '
                                   "set to itself")
            return
        if a.sub == "eviction":
            if _node_of(a.old) != node:
                raise forbidden(a, f'node "{node}" can only evict pods with spec.nodeName set to itself')
            return
        if a.sub:
            return
        if a.operation == "DELETE":
            if _node_of(a.old) != node:
                raise forbidden(a, f'node "{node}" can only delete pods with spec.nodeName set to itself')
            return
        if a.operation != "CREATE":
            raise forbidden(a, f'unexpected operation "{a.operation}", node "{node}" can only create and '
                               "delete mirror pods")
        pod = a.obj or {}
        if MIRROR_ANNOTATION not in ((pod.get("metadata") or {}).get("annotations") or {}):
            raise forbidden(a, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only '
                               "create mirror pods")
        if _node_of(pod) != node:
            raise forbidden(a, f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = (pod.get("metadata") or {}).get("ownerReferences") or []
        if len(owners) > 1 or any(o.get("kind") != "Node" or o.get("name") != node or o.get("apiVersion") != "v1"
                                  for o in owners if isinstance(o, dict)):
            raise forbidden(a, f'node "{node}" can only create pods with an owner reference set to itself')
        spec = pod.get("spec") or {}
        from ..nodeauthz import pod_references
        refs = {kind for kind, _ in pod_references(pod) if kind != "serviceaccount"}
        for kind, word in (("secret", "secrets"), ("configmap", "configmaps"),
                           ("pvc", "persistentvolumeclaims")):
            if kind in refs:
                raise forbidden(a, f'node "{node}" can not create pods that reference {word}')
        if spec.get("serviceAccountName") or spec.get("serviceAccount"):
            raise forbidden(a, f'node "{node}" can not create pods that use service accounts')

    async def _node(self, a: Attributes, node: str) -> None:
        if a.name != node:
            raise forbidden(a, f'node "{node}" is not allowed to modify node "{a.name}"')
        if a.operation == "DELETE" or a.obj is None:
            return
        labels = (a.obj.get("metadata") or {}).get("labels") or {}
        old_labels = ((a.old or {}).get("metadata") or {}).get("labels") or {}
        changed = sorted(k for k in set(labels) | set(old_labels)
                         if k.startswith(RESTRICTED_LABEL_PREFIX) and labels.get(k) != old_labels.get(k))
        if changed:
            raise forbidden(a, f'is not allowed to modify labels: {", ".join(changed)}')
        if a.operation == "UPDATE" and a.sub == "" and \
                (a.obj.get("spec") or {}).get("taints") != ((a.old or {}).get("spec") or {}).get("taints"):
            raise forbidden(a, f'node "{node}" is not allowed to modify taints')

    async def _lease(self, a: Attributes, node: str) -> None:
        if a.name != node or a.req.namespace != "kube-node-lease":
            raise forbidden(a, "can only access node lease with the same name as the requesting node")
