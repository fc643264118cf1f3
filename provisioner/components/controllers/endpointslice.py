"""The endpointslice controller: discovery.k8s.io/v1 EndpointSlices per Service with a selector.

Each endpoint carries its node and the node's zone (topology.kubernetes.io/zone), and conditions
as upstream sets them: serving (the pod's Ready condition),
terminating (being deleted), and ready (serving and not terminating; always true with
publishNotReadyAddresses). Terminating pods stay listed so proxies can drain them. Endpoints are
grouped by their resolved ports (named ports may differ between pods), at most 100 a slice;
slices are labelled `kubernetes.io/service-name` and owned by the Service.
"""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key
from .endpoints import (
    ServiceSelectionMixin,
    hostname,
    pod_ports,
    port_dicts,
    selected_pods,
    should_publish,
    target_ref,
)

Obj = dict[str, Any]
SERVICE_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_PER_SLICE = 100


ZONE_LABEL = "topology.kubernetes.io/zone"


def endpoint(service: Obj, pod: Obj, publish_all: bool, zones: dict[str, str] | None = None) -> Obj:
    serving = podutil.is_ready(pod)
    terminating = podutil.is_terminating(pod)
    ep: Obj = {"addresses": [pod["status"]["podIP"]],
               "conditions": {"ready": publish_all or (serving and not terminating), "serving": serving,
                              "terminating": terminating},
               "targetRef": target_ref(pod)}
    if (pod.get("spec") or {}).get("nodeName"):
        ep["nodeName"] = pod["spec"]["nodeName"]
        if (zones or {}).get(ep["nodeName"]):
            ep["zone"] = zones[ep["nodeName"]]
    if hostname(service, pod):
        ep["hostname"] = hostname(service, pod)
    return ep


def desired_slices(service: Obj, pods: list[Obj], zones: dict[str, str] | None = None) -> list[tuple[tuple, list[Obj]]]:
    """[(ports, endpoints)] with at most MAX_PER_SLICE endpoints each, in a stable order."""
    publish_all = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple, list[Obj]] = {}
    for pod in selected_pods(service, pods):
        if not should_publish(pod, include_terminating=True):
            continue
        ports = pod_ports(service, pod)
        if ports is None:
            continue
        groups.setdefault(ports, []).append(endpoint(service, pod, publish_all, zones))
    out = []
    for ports, eps in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        eps.sort(key=lambda e: e["addresses"][0])
        for i in range(0, len(eps), MAX_PER_SLICE):
            out.append((ports, eps[i:i + MAX_PER_SLICE]))
    if not out and (service.get("spec") or {}).get("selector"):
        ports = tuple((sp.get("name", ""), sp.get("port"), sp.get("protocol", "TCP"), sp.get("appProtocol"))
                      for sp in (service.get("spec") or {}).get("ports") or [])
        out.append((ports, []))  # an empty slice says "no endpoints" (upstream keeps one)
    return out


def slice_labels(service: Obj) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    labels.update({SERVICE_LABEL: service["metadata"]["name"], MANAGED_BY: CONTROLLER_NAME})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return labels


def slice_body(service: Obj, ports: tuple, eps: list[Obj]) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{service['metadata']['name']}-",
                         "namespace": service["metadata"]["namespace"], "labels": slice_labels(service),
                         "ownerReferences": [podutil.owner_ref(service, "v1", "Service")]},
            "addressType": "IPv4", "endpoints": eps, "ports": port_dicts(ports)}


def same_content(current: Obj, wanted: Obj) -> bool:
    return ((current.get("endpoints") or []) == wanted["endpoints"]
            and (current.get("ports") or []) == wanted["ports"]
            and (current["metadata"].get("labels") or {}) == wanted["metadata"]["labels"])


class EndpointSliceController(ServiceSelectionMixin, Controller):
    name = "endpointslice"
    requires = (("discovery.k8s.io", "v1", "endpointslices"),)

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.slices = self.ctx.informer("discovery.k8s.io", "v1", "endpointslices")
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.slices.add_handler(None, lambda _o, s: self._slice(s), self._slice)
        self.created: dict[str, set[str]] = {}  # service key -> slices created, not yet in the cache

    def _slice(self, s: Obj) -> None:
        labels = s["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_LABEL):
            self.queue.add(f"{s['metadata']['namespace']}/{labels[SERVICE_LABEL]}")

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        pending = {n for n in self.created.pop(key, set())
                   if self.slices.get(f"{ns}/{n}") is None}
        if pending:  # our own creations are not in the cache yet: deciding now would duplicate them
            self.created[key] = pending
            self.queue.add_after(key, 0.2)
            return
        svc = self.services.get(key)
        mine = [s for s in self.slices.by_index("namespace", ns or "")
                if (s["metadata"].get("labels") or {}).get(SERVICE_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME]
        if svc is None or not (svc.get("spec") or {}).get("selector") or \
                (svc.get("spec") or {}).get("type") == "ExternalName":
            for s in mine:  # the Service is gone (the garbage collector would also get these)
                await self._delete(s)
            return
        zones = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE_LABEL, "")
                 for n in self.nodes.list()}
        wanted = [slice_body(svc, ports, eps) for ports, eps in
                  desired_slices(svc, self.pods.by_index("namespace", ns or ""), zones)]
        unmatched = list(mine)
        try:
            for body in wanted:
                exact = next((s for s in unmatched if same_content(s, body)), None)
                if exact is not None:
                    unmatched.remove(exact)
                    continue
                reuse = next((s for s in unmatched if (s.get("ports") or []) == body["ports"]), None)
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
            if exc.code == 403:
                return  # the namespace is terminating
            raise
        for s in unmatched:
            await self._delete(s)

    async def _delete(self, s: Obj) -> None:
        try:
            await self.api.delete("discovery.k8s.io", "v1", "endpointslices", s["metadata"]["name"],
                                  s["metadata"]["namespace"])
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
