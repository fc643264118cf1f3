"""Per-kind behaviour of the generic write path, as kube-apiserver's registry strategies.

The generic registry (writes.py, deletion.py) knows nothing about kinds; at fixed points it
calls the kind's Strategy:
- prepare_for_create / prepare_for_update: server-owned fields (status reset on create, a
  pod's initial status, a CSR's requestor, immutable parts kept on update);
- prepare_for_status_update: what a status-like subresource (status, approval) may change;
- before_store / after_create / after_delete: side effects that must follow the stored state
  (a Service's cluster IP and node ports, a new namespace's default service account);
- graceful_delete: whether a delete only marks the object (namespaces; finalizers are generic).
Defaulting and validation stay in validation.py (tables by kind), called by the registry.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING

from . import fields
from .apirequest import Req

if TYPE_CHECKING:
    from .crud import Registry
    from .registry import Resource


class Strategy:
    reset_status_on_create = False
    marks_on_delete = False  # deletion only sets deletionTimestamp (the owner finishes it)

    def prepare_for_create(self, req: Req, obj: dict) -> None:
        if self.reset_status_on_create:
            obj.pop("status", None)

    def prepare_for_update(self, req: Req, new: dict, old: dict) -> None:
        return None

    def prepare_for_status_update(self, req: Req, new: dict, old: dict) -> None:
        return None

    async def before_store(self, registry: "Registry", req: Req, new: dict, old: dict | None) -> None:
        return None

    async def store_failed(self, registry: "Registry", req: Req, new: dict) -> None:
        return None

    async def after_create(self, registry: "Registry", req: Req, obj: dict) -> None:
        return None

    async def after_delete(self, registry: "Registry", obj: dict) -> None:
        return None

    def prepare_for_delete_mark(self, obj: dict) -> None:
        """The object as it is kept once marked for deletion."""
        return None

    async def grace_period(self, registry: "Registry", cur: dict, options: dict) -> int:
        """Seconds a delete waits for an owner to finish it (0: delete now)."""
        return 0

    def after_delete_mark(self, registry: "Registry", obj: dict) -> None:
        return None


class WithStatus(Strategy):
    """Workloads and other objects whose status only controllers write."""
    reset_status_on_create = True


def qos_class(spec: dict) -> str:
    """The pod's QoS class, as the kubelet and kube-apiserver compute it (cpu and memory)."""
    containers = [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]
    requests_any = limits_any = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if not isinstance(req, dict) or not isinstance(lim, dict):
            return "BestEffort"
        for name in ("cpu", "memory"):
            r, limit = req.get(name, lim.get(name)), lim.get(name)
            requests_any = requests_any or r is not None
            limits_any = limits_any or limit is not None
            if limit is None or r != limit:
                guaranteed = False
    if not requests_any and not limits_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    def prepare_for_create(self, req: Req, obj: dict) -> None:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    async def grace_period(self, registry: "Registry", cur: dict, options: dict) -> int:
        """Pods bound to an existing node wait for their kubelet to stop them."""
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = (cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        node = (cur.get("spec") or {}).get("nodeName")
        if not grace or not node or (cur.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if cur["metadata"].get("deletionTimestamp"):
            return 0 if grace == 0 else int(cur["metadata"].get("deletionGracePeriodSeconds") or grace)
        return int(grace) if await registry.storage.get("nodes", None, node) else 0


class CSRStrategy(Strategy):
    reset_status_on_create = True

    def prepare_for_create(self, req: Req, obj: dict) -> None:
        super().prepare_for_create(req, obj)
        if isinstance(obj.get("spec"), dict):
            # who asked is recorded by the server, never taken from the request body
            obj["spec"].update(username=req.user, groups=req.groups or ["system:authenticated"])
            obj["spec"].pop("uid", None)
            obj["spec"].pop("extra", None)

    def prepare_for_update(self, req: Req, new: dict, old: dict) -> None:
        new["spec"] = old.get("spec")  # spec is immutable after creation

    def prepare_for_status_update(self, req: Req, new: dict, old: dict) -> None:
        if req.sub == "approval":  # approvers change conditions only, signers the rest
            new["status"] = dict(old.get("status") or {}, conditions=(new.get("status") or {}).get("conditions") or [])
        for cond in (new.get("status") or {}).get("conditions") or []:
            if isinstance(cond, dict):
                cond.setdefault("lastTransitionTime", fields.now())


class PendingStrategy(Strategy):
    """Volumes and claims start Pending; their controllers move them on."""

    def prepare_for_create(self, req: Req, obj: dict) -> None:
        obj["status"] = {"phase": "Pending"}


class ServiceStrategy(Strategy):
    async def before_store(self, registry: "Registry", req: Req, new: dict, old: dict | None) -> None:
        if not req.dry_run and not req.sub:
            await registry.allocator.allocate_service(new, old) if old is not None else \
                await registry.allocator.allocate_service(new)

    async def store_failed(self, registry: "Registry", req: Req, new: dict) -> None:
        await registry.allocator.release_service(new)

    async def after_delete(self, registry: "Registry", obj: dict) -> None:
        await registry.allocator.release_service(obj)


class NamespaceStrategy(Strategy):
    marks_on_delete = True

    def prepare_for_delete_mark(self, obj: dict) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def after_delete_mark(self, registry: "Registry", obj: dict) -> None:
        # the namespace controller's job, done by the server until a controller manager does it
        registry._spawn(registry._finalize_namespace(obj["metadata"]["name"]))

    async def after_create(self, registry: "Registry", req: Req, obj: dict) -> None:
        """Every namespace gets its `default` service account at once (the serviceaccounts
        controller's job in Kubernetes; done here too so pods can be admitted right away, with
        or without a controller manager; whoever comes second finds it there)."""
        await registry.ensure_service_account(obj["metadata"]["name"], "default")


STRATEGIES: dict[str, Strategy] = {
    "Pod": PodStrategy(), "Service": ServiceStrategy(), "Namespace": NamespaceStrategy(),
    "CertificateSigningRequest": CSRStrategy(),
    "PersistentVolume": PendingStrategy(), "PersistentVolumeClaim": PendingStrategy(),
    **{kind: WithStatus() for kind in ("Deployment", "ReplicaSet", "DaemonSet", "Job", "StatefulSet",
                                       "CronJob", "ReplicationController", "PodDisruptionBudget",
                                       "HorizontalPodAutoscaler", "Ingress", "ResourceQuota", "APIService")},
}
DEFAULT = Strategy()


def for_kind(kind: str) -> Strategy:
    return STRATEGIES.get(kind, DEFAULT)


def for_resource(res: "Resource") -> Strategy:
    """The strategy of a served resource: a custom resource's comes from its CRD (crd.py)."""
    from . import crd

    served = crd.served_for(res)
    if served is not None:
        return crd.CustomResourceStrategy(served)
    if (res.group, res.kind) == (crd.GROUP, "CustomResourceDefinition"):
        return _crd_strategy()
    return STRATEGIES.get(res.kind, DEFAULT)


@functools.cache
def _crd_strategy() -> Strategy:
    from . import crd

    return crd.CRDStrategy()


def status_update(req: Req, cur: dict, new: dict, meta: dict, strategy: Strategy) -> dict:
    """The object a status-like subresource write leaves: the stored object with the new
    status and the caller's labels, annotations, owners and finalizers."""
    keep = copy.deepcopy(cur)
    keep["status"] = new.get("status", {})
    strategy.prepare_for_status_update(req, keep, cur)
    for k in ("labels", "annotations", "ownerReferences", "finalizers", "managedFields"):
        keep["metadata"].pop(k, None)
        if k in meta:
            keep["metadata"][k] = meta[k]
    return keep
