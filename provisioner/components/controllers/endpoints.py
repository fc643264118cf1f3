"""The endpoints controller: a v1 Endpoints object per Service with a selector.

Pods selected by the Service that have an IP are its endpoints: ready ones under `addresses`,
the others under `notReadyAddresses` (all under `addresses` with publishNotReadyAddresses).
Terminating and finished pods are left out. Named target ports are resolved per pod from its
container ports; pods are grouped into subsets by the ports they resolve to. The selection and
port logic here is shared with the endpointslice controller.
"""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]
HEADLESS_LABEL = "service.kubernetes.io/headless"


def selected_pods(service: Obj, pods: list[Obj]) -> list[Obj]:
    selector = (service.get("spec") or {}).get("selector")
    return [p for p in pods if podutil.map_selector_matches(selector, p["metadata"].get("labels"))]


def should_publish(pod: Obj, include_terminating: bool) -> bool:
    status = pod.get("status") or {}
    if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
        return False
    return include_terminating or not podutil.is_terminating(pod)


def resolve_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod port a Service port targets: a number, or a container port looked up by name."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = service_port.get("protocol", "TCP")
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == proto:
                return int(p["containerPort"])
    return None


def pod_ports(service: Obj, pod: Obj) -> tuple[tuple, ...] | None:
    """(name, port, protocol, appProtocol) per Service port for this pod; None if a port
    cannot be resolved (the pod serves no endpoint then, as upstream skips it)."""
    out = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        port = resolve_port(sp, pod)
        if port is None:
            return None
        out.append((sp.get("name", ""), port, sp.get("protocol", "TCP"), sp.get("appProtocol")))
    return tuple(out)


def port_dicts(ports: tuple[tuple, ...]) -> list[Obj]:
    out = []
    for name, port, proto, app in ports:
        entry: Obj = {"port": port, "protocol": proto}
        if name:
            entry["name"] = name
        if app:
            entry["appProtocol"] = app
        out.append(entry)
    return out


def target_ref(pod: Obj) -> Obj:
    m = pod["metadata"]
    return {"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m.get("uid")}


def hostname(service: Obj, pod: Obj) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        return spec["hostname"]
    return None


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    publish_all = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple, dict[str, list[Obj]]] = {}
    for pod in selected_pods(service, pods):
        if not should_publish(pod, publish_all):
            continue
        ports = pod_ports(service, pod)
        if ports is None:
            continue
        addr: Obj = {"ip": pod["status"]["podIP"], "targetRef": target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        if hostname(service, pod):
            addr["hostname"] = hostname(service, pod)
        bucket = "addresses" if publish_all or podutil.is_ready(pod) else "notReadyAddresses"
        groups.setdefault(ports, {}).setdefault(bucket, []).append(addr)
    subsets = []
    for ports, buckets in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        subset: Obj = {k: sorted(v, key=lambda a: a["ip"]) for k, v in sorted(buckets.items())}
        if ports:
            subset["ports"] = port_dicts(ports)
        subsets.append(subset)
    return subsets


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


class ServiceSelectionMixin:
    """Handlers shared by the endpoints and endpointslice controllers: a pod change touches the
    Services whose selectors match its old or new labels."""

    def watch_services_and_pods(self) -> None:
        self.services = self.ctx.informer("", "v1", "services")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.enqueue_all(self.services)
        self.pods.add_handler(self._pod, lambda old, new: (self._pod(old), self._pod(new)), self._pod)

    def _pod(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace") or ""
        labels = pod["metadata"].get("labels") or {}
        for svc in self.services.by_index("namespace", ns):
            if podutil.map_selector_matches((svc.get("spec") or {}).get("selector"), labels):
                self.enqueue(svc)


class EndpointsController(ServiceSelectionMixin, Controller):
    name = "endpoint"

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.endpoints = self.ctx.informer("", "v1", "endpoints")
        self.endpoints.add_handler(on_delete=self.enqueue)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None:
                try:
                    await self.api.delete("", "v1", "endpoints", name, ns)
                except ApiStatusError as exc:
                    if exc.code != 404:
                        raise
            return
        if not (svc.get("spec") or {}).get("selector") or (svc.get("spec") or {}).get("type") == "ExternalName":
            return  # endpoints of selector-less Services are the user's; ExternalName has none
        subsets = desired_subsets(svc, self.pods.by_index("namespace", ns or ""))
        labels = endpoints_labels(svc)
        body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns,
                                                                     "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        try:
            if current is None:
                await self.api.create("", "v1", "endpoints", body, ns)
            elif (current.get("subsets") or []) != subsets or (current["metadata"].get("labels") or {}) != labels:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                body["metadata"]["annotations"] = current["metadata"].get("annotations")
                await self.api.replace("", "v1", "endpoints", body, ns)
        except ApiStatusError as exc:
            if exc.code == 403:
                return  # the namespace is terminating
            raise
