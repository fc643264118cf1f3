"""The resourcequota controller: status.used of each ResourceQuota, for what its spec.hard names.

Counted: object counts (pods, services, configmaps, secrets, persistentvolumeclaims,
replicationcontrollers, resourcequotas, services.nodeports, services.loadbalancers and
`count/<resource>[.<group>]`), and compute and storage requests/limits of pods that are not
finished (cpu, memory and their requests./limits. forms, requests.storage). Pod requests are the
larger of the containers' sum and any init container, plus overhead, as upstream.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from provisioner.components.api import quantity
from provisioner.components.api.client import ApiStatusError

from .base import Controller

Obj = dict[str, Any]
COUNTED = {"pods": ("", "v1", "pods"), "services": ("", "v1", "services"), "configmaps": ("", "v1", "configmaps"),
           "secrets": ("", "v1", "secrets"), "persistentvolumeclaims": ("", "v1", "persistentvolumeclaims"),
           "replicationcontrollers": ("", "v1", "replicationcontrollers"),
           "resourcequotas": ("", "v1", "resourcequotas")}
POD_RESOURCES = {"cpu": ("requests", "cpu"), "memory": ("requests", "memory"),
                 "requests.cpu": ("requests", "cpu"), "requests.memory": ("requests", "memory"),
                 "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory"),
                 "requests.ephemeral-storage": ("requests", "ephemeral-storage"),
                 "limits.ephemeral-storage": ("limits", "ephemeral-storage")}


def pod_amount(pod: Obj, kind: str, resource: str) -> Decimal:
    spec = pod.get("spec") or {}

    def of(c: Obj) -> Decimal:
        value = ((c.get("resources") or {}).get(kind) or {}).get(resource)
        if value is None and kind == "requests":  # a limit alone is also the request
            value = ((c.get("resources") or {}).get("limits") or {}).get(resource)
        return quantity.parse(value) if value is not None else Decimal(0)
    total = sum((of(c) for c in spec.get("containers") or []), Decimal(0))
    init = max((of(c) for c in spec.get("initContainers") or []), default=Decimal(0))
    overhead = (spec.get("overhead") or {}).get(resource)
    return max(total, init) + (quantity.parse(overhead) if overhead else Decimal(0))


def live_pod(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and \
        not (pod.get("metadata") or {}).get("deletionTimestamp")


def format_quantity(resource: str, value: Decimal) -> str:
    if "cpu" in resource:
        milli = int(value * 1000)
        return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    n = int(value)
    for suffix, size in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def used(hard: dict[str, str], lister: Callable[[tuple[str, str, str]], list[Obj]]) -> dict[str, str]:
    out = {}
    for name in hard:
        if name in COUNTED:
            objs = lister(COUNTED[name])
            if name == "pods":
                objs = [p for p in objs if live_pod(p)]
            out[name] = str(len(objs))
        elif name in ("services.nodeports", "services.loadbalancers"):
            want = "NodePort" if name.endswith("nodeports") else "LoadBalancer"
            svcs = lister(COUNTED["services"])
            out[name] = str(sum(1 for s in svcs if (s.get("spec") or {}).get("type") in
                                ((want, "LoadBalancer") if want == "NodePort" else (want,))))
        elif name in POD_RESOURCES:
            kind, resource = POD_RESOURCES[name]
            total = sum((pod_amount(p, kind, resource) for p in lister(COUNTED["pods"]) if live_pod(p)), Decimal(0))
            out[name] = format_quantity(resource, total)
        elif name == "requests.storage":
            total = sum((quantity.parse(((c.get("spec") or {}).get("resources") or {}).get("requests", {})
                                        .get("storage", "0")) for c in lister(COUNTED["persistentvolumeclaims"])),
                        Decimal(0))
            out[name] = format_quantity("storage", total)
        elif name.startswith("count/"):
            resource, _, group = name[len("count/"):].partition(".")
            out[name] = str(len(lister((group, "", resource))))
    return out


class ResourceQuotaController(Controller):
    name = "resourcequota"
    requires = (("", "v1", "resourcequotas"),)

    def setup(self) -> None:
        self.quotas = self.ctx.informer("", "v1", "resourcequotas")
        self.served: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.watched: dict[tuple[str, str, str], Any] = {}
        self.enqueue_all(self.quotas)
        for gvr in COUNTED.values():
            self._watch(gvr)

    def _watch(self, gvr: tuple[str, str, str]) -> Any:
        if gvr not in self.watched:
            inf = self.ctx.informer(*gvr)
            inf.add_handler(self._touched, lambda _o, n: self._touched(n), self._touched)
            self.watched[gvr] = inf
            inf.start()
        return self.watched[gvr]

    def _touched(self, obj: Obj) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            for q in self.quotas.by_index("namespace", ns):
                self.enqueue(q)

    def _lister(self, ns: str) -> Callable[[tuple[str, str, str]], list[Obj]]:
        def lister(gvr: tuple[str, str, str]) -> list[Obj]:
            group, version, plural = gvr
            if not version:  # count/<resource>.<group>: use the informer of its preferred version
                version = next((g[1] for g in self.watched if g[0] == group and g[2] == plural), "v1")
            return self._watch((group, version, plural)).by_index("namespace", ns)
        return lister

    async def sync(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        hard = (quota.get("spec") or {}).get("hard") or {}
        status = {"hard": dict(hard), "used": used(hard, self._lister(quota["metadata"]["namespace"]))}
        if status == (quota.get("status") or {}):
            return
        try:
            await self.api.replace("", "v1", "resourcequotas", dict(quota, status=status),
                                   quota["metadata"]["namespace"], sub="status")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
