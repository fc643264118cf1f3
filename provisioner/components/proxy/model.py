"""proxy/model: what kube-proxy needs from Services and EndpointSlices, as plain values.

A Service becomes one ``ServicePort`` per port (ClusterIP, NodePort, policies, affinity); its
EndpointSlices become the port's ``Endpoint`` list. Pure functions: the proxier feeds them the
informers' objects, the tests and the benchmark feed them dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_SECONDS = 10800


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str                  # lower case: tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int = 0
    external_local: bool = False   # externalTrafficPolicy: Local
    internal_local: bool = False   # internalTrafficPolicy: Local
    affinity_seconds: int = 0      # sessionAffinity ClientIP timeout; 0 = none
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def port_key(self) -> str:
        """ServicePortName as kube-proxy prints it: ns/name, plus :port-name when named."""
        return self.service + (f":{self.port_name}" if self.port_name else "")

    def usable_endpoints(self, local_only: bool = False, node: str = "") -> list[Endpoint]:
        """Ready endpoints; when none is ready, serving terminating ones (graceful fallback)."""
        candidates = [e for e in self.endpoints if not local_only or e.node == node]
        ready = [e for e in candidates if e.ready]
        if ready:
            return ready
        return [e for e in candidates if e.serving and e.terminating]


def _slice_endpoints(slices: list[dict], port_name: str, protocol: str) -> list[Endpoint]:
    found: dict[str, Endpoint] = {}
    for item in slices:
        if item.get("addressType", "IPv4") != "IPv4":
            continue
        port = next((p.get("port") for p in item.get("ports") or []
                     if (p.get("name") or "") == port_name
                     and (p.get("protocol") or "TCP").lower() == protocol), None)
        if not port:
            continue
        for endpoint in item.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready")
            serving = conditions.get("serving")
            for address in endpoint.get("addresses") or []:
                found.setdefault(f"{address}:{port}", Endpoint(
                    ip=address, port=int(port), node=endpoint.get("nodeName") or "",
                    ready=ready is None or bool(ready),             # nil means ready (API docs)
                    serving=ready is None or bool(ready) if serving is None else bool(serving),
                    terminating=bool(conditions.get("terminating"))))
    return sorted(found.values(), key=lambda e: (e.ip, e.port))


def service_ports(service: dict, slices: list[dict]) -> list[ServicePort]:
    """The proxyable ports of one Service (none for headless, ExternalName or IP-less ones)."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") == "ExternalName" or cluster_ip in ("", "None") or ":" in cluster_ip:
        return []
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    external_local = spec.get("externalTrafficPolicy") == "Local" and \
        spec.get("type") in ("NodePort", "LoadBalancer")
    ports = []
    for port in spec.get("ports") or []:
        protocol = (port.get("protocol") or "TCP").lower()
        name = port.get("name") or ""
        ports.append(ServicePort(
            namespace=meta.get("namespace", "default"), name=meta.get("name", ""),
            port_name=name, protocol=protocol, cluster_ip=cluster_ip, port=int(port["port"]),
            node_port=int(port.get("nodePort") or 0) if spec.get("type") in
            ("NodePort", "LoadBalancer") else 0,
            external_local=external_local,
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            affinity_seconds=affinity,
            endpoints=tuple(_slice_endpoints(slices, name, protocol))))
    return ports


def slice_service(endpoint_slice: dict) -> str | None:
    """ns/name of the Service an EndpointSlice belongs to (its kubernetes.io/service-name label)."""
    meta = endpoint_slice.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace', 'default')}/{name}" if name else None
