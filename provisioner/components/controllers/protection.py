"""The pvc-protection and pv-protection controllers: storage in use is not deleted under a pod.

A PersistentVolumeClaim carries the `kubernetes.io/pvc-protection` finalizer (added here when
missing); once it is being deleted the finalizer is removed only when no unfinished pod in its
namespace mounts it. A PersistentVolume carries `kubernetes.io/pv-protection`, removed once it is
being deleted and no longer Bound.
"""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]
PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"


def claims_of(pod: Obj) -> set[str]:
    return {(v.get("persistentVolumeClaim") or {}).get("claimName", "")
            for v in (pod.get("spec") or {}).get("volumes") or [] if v.get("persistentVolumeClaim")}


def pvc_in_use(name: str, pods: list[Obj]) -> bool:
    return any(name in claims_of(p) and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
               for p in pods)


async def set_finalizers(api: Any, plural: str, obj: Obj, finalizers: list[str]) -> None:
    meta = obj["metadata"]
    try:
        await api.patch("", "v1", plural, meta["name"],
                        {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta["resourceVersion"]}},
                        meta.get("namespace"))
    except ApiStatusError as exc:
        if exc.code != 404:
            raise


class PVCProtectionController(Controller):
    name = "pvc-protection"
    requires = (("", "v1", "persistentvolumeclaims"),)

    def setup(self) -> None:
        self.claims = self.ctx.informer("", "v1", "persistentvolumeclaims")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.claims.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))
        self.pods.add_handler(on_update=lambda _o, p: self._pod(p), on_delete=self._pod)

    def _pod(self, pod: Obj) -> None:
        for claim in claims_of(pod):
            self.queue.add(f"{pod['metadata']['namespace']}/{claim}")

    async def sync(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None:
            return
        fins = list(pvc["metadata"].get("finalizers") or [])
        ns, name = split_key(key)
        if not podutil.is_terminating(pvc):
            if PVC_FINALIZER not in fins:
                await set_finalizers(self.api, "persistentvolumeclaims", pvc, fins + [PVC_FINALIZER])
            return
        if PVC_FINALIZER in fins and not pvc_in_use(name, self.pods.by_index("namespace", ns or "")):
            await set_finalizers(self.api, "persistentvolumeclaims", pvc, [f for f in fins if f != PVC_FINALIZER])


class PVProtectionController(Controller):
    name = "pv-protection"
    requires = (("", "v1", "persistentvolumes"),)

    def setup(self) -> None:
        self.volumes = self.ctx.informer("", "v1", "persistentvolumes")
        self.volumes.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        pv = self.volumes.get(key)
        if pv is None:
            return
        fins = list(pv["metadata"].get("finalizers") or [])
        if not podutil.is_terminating(pv):
            if PV_FINALIZER not in fins:
                await set_finalizers(self.api, "persistentvolumes", pv, fins + [PV_FINALIZER])
        elif PV_FINALIZER in fins and (pv.get("status") or {}).get("phase") != "Bound":
            await set_finalizers(self.api, "persistentvolumes", pv, [f for f in fins if f != PV_FINALIZER])
