"""The endpointslicemirroring controller: Endpoints written by hand for a Service without a
selector are mirrored into EndpointSlices, which is what kube-proxy and cluster DNS read.

One slice per Endpoints subset (its ports; at most 100 addresses each), managed-by
`endpointslicemirroring-controller.k8s.io`, labelled with the Service name and owned by the
Service. Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (as the API server
marks the ones it maintains) and those of Services with a selector are left alone.
"""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key
from .endpointslice import MAX_PER_SLICE, SERVICE_LABEL, same_content

Obj = dict[str, Any]
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP = "endpointslice.kubernetes.io/skip-mirror"


def mirrored_slices(service: Obj, endpoints: Obj) -> list[Obj]:
    name = service["metadata"]["name"]
    labels = {k: v for k, v in (endpoints["metadata"].get("labels") or {}).items()}
    labels.update({SERVICE_LABEL: name, MANAGED_BY: CONTROLLER_NAME})
    out = []
    for subset in endpoints.get("subsets") or []:
        eps = []
        for bucket, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in subset.get(bucket) or []:
                ep: Obj = {"addresses": [a["ip"]], "conditions": {"ready": ready}}
                for src, dst in (("nodeName", "nodeName"), ("hostname", "hostname"), ("targetRef", "targetRef")):
                    if a.get(src):
                        ep[dst] = a[src]
                eps.append(ep)
        eps.sort(key=lambda e: e["addresses"][0])
        ports = [{k: v for k, v in p.items() if k in ("name", "port", "protocol", "appProtocol")}
                 for p in subset.get("ports") or []]
        for i in range(0, max(len(eps), 1), MAX_PER_SLICE):
            out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{name}-", "namespace": service["metadata"]["namespace"],
                                     "labels": dict(labels),
                                     "ownerReferences": [podutil.owner_ref(service, "v1", "Service")]},
                        "addressType": "IPv4", "endpoints": eps[i:i + MAX_PER_SLICE], "ports": ports})
    return out


class EndpointSliceMirroringController(Controller):
    name = "endpointslicemirroring"
    requires = (("discovery.k8s.io", "v1", "endpointslices"),)

    def setup(self) -> None:
        self.services = self.ctx.informer("", "v1", "services")
        self.endpoints = self.ctx.informer("", "v1", "endpoints")
        self.slices = self.ctx.informer("discovery.k8s.io", "v1", "endpointslices")
        self.created: dict[str, set[str]] = {}
        for inf in (self.services, self.endpoints):
            self.enqueue_all(inf)
        self.slices.add_handler(None, lambda _o, s: self._slice(s), self._slice)

    def _slice(self, s: Obj) -> None:
        labels = s["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_LABEL):
            self.queue.add(f"{s['metadata']['namespace']}/{labels[SERVICE_LABEL]}")

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        pending = {n for n in self.created.pop(key, set()) if self.slices.get(f"{ns}/{n}") is None}
        if pending:
            self.created[key] = pending
            self.queue.add_after(key, 0.2)
            return
        svc, eps = self.services.get(key), self.endpoints.get(key)
        mine = [s for s in self.slices.by_index("namespace", ns or "")
                if (s["metadata"].get("labels") or {}).get(SERVICE_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME]
        wanted: list[Obj] = []
        if svc is not None and eps is not None and not (svc.get("spec") or {}).get("selector") \
                and (eps["metadata"].get("labels") or {}).get(SKIP) != "true":
            wanted = mirrored_slices(svc, eps)
        unmatched = list(mine)
        for body in wanted:
            exact = next((s for s in unmatched if same_content(s, body)), None)
            if exact is not None:
                unmatched.remove(exact)
                continue
            reuse = next((s for s in unmatched if (s.get("ports") or []) == body["ports"]), None)
            try:
                if reuse is not None:
                    unmatched.remove(reuse)
                    body["metadata"] = dict(body["metadata"], name=reuse["metadata"]["name"],
                                            resourceVersion=reuse["metadata"]["resourceVersion"])
                    body["metadata"].pop("generateName")
                    await self.api.replace("discovery.k8s.io", "v1", "endpointslices", body, ns)
                else:
                    made = await self.api.create("discovery.k8s.io", "v1", "endpointslices", body, ns)
                    self.created.setdefault(key, set()).add(made["metadata"]["name"])
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        for s in unmatched:
            try:
                await self.api.delete("discovery.k8s.io", "v1", "endpointslices", s["metadata"]["name"], ns)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
