"""dns/zone: the records the Kubernetes DNS specification (kubernetes/dns docs/specification.md)
asks for, from Services and EndpointSlices. Pure: the server feeds informer objects in.

- ClusterIP Service: A ``<svc>.<ns>.svc.<zone>``; SRV ``_<port>._<proto>.<svc>.<ns>.svc.<zone>``
  per named port, target the Service's name; PTR for the ClusterIP.
- Headless Service: A per ready endpoint; A ``<hostname>.<svc>.<ns>.svc.<zone>`` for endpoints
  with a hostname; SRV per ready endpoint and named port (target its hostname, else its address
  dashed); PTR per endpoint.
- ExternalName Service: CNAME to the external name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass
class ServiceRecords:
    name: str                   # <svc>.<ns>.svc.<zone>. (absolute, lower case)
    addresses: list[str] = field(default_factory=list)          # A/AAAA of the name
    cname: str | None = None
    srv: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # _p._proto. -> (port, target)
    hosts: dict[str, list[str]] = field(default_factory=dict)   # hostname label -> addresses


@dataclass
class Zone:
    domain: str                                     # "cluster.local."
    services: dict[str, ServiceRecords] = field(default_factory=dict)   # name -> records
    ptr: dict[str, str] = field(default_factory=dict)                   # reverse name -> target
    namespaces: set[str] = field(default_factory=set)


def dashed(address: str) -> str:
    return address.replace(".", "-").replace(":", "-")


def _ready_endpoints(slices: list[dict]) -> list[tuple[dict, str]]:
    found = []
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            if ready is None or ready:
                found += [(endpoint, address) for address in endpoint.get("addresses") or []]
    return found


def _slice_ports(slices: list[dict]) -> list[dict]:
    seen: dict[tuple, dict] = {}
    for item in slices:
        for port in item.get("ports") or []:
            seen.setdefault((port.get("name"), port.get("protocol"), port.get("port")), port)
    return list(seen.values())


def build(domain: str, services: list[dict], slices_by_service: dict[str, list[dict]]) -> Zone:
    zone = Zone(domain=domain.rstrip(".").lower() + ".")
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        ns, svc = meta.get("namespace", "default"), meta.get("name", "")
        zone.namespaces.add(ns)
        name = f"{svc}.{ns}.svc.{zone.domain}".lower()
        records = ServiceRecords(name)
        if spec.get("type") == "ExternalName":
            records.cname = spec.get("externalName", "").rstrip(".").lower() + "."
            zone.services[name] = records
            continue
        cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
        if cluster_ips and cluster_ips[0] != "None":
            records.addresses = cluster_ips
            for ip in cluster_ips:
                zone.ptr[ipaddress.ip_address(ip).reverse_pointer + "."] = name
            for port in spec.get("ports") or []:
                if port.get("name"):
                    key = f"_{port['name']}._{(port.get('protocol') or 'TCP').lower()}"
                    records.srv.setdefault(key, []).append((int(port["port"]), name))
        else:                                     # headless: the ready endpoints themselves
            endpoints = _ready_endpoints(slices_by_service.get(f"{ns}/{svc}", []))
            ports = _slice_ports(slices_by_service.get(f"{ns}/{svc}", []))
            for endpoint, address in endpoints:
                records.addresses.append(address)
                label = (endpoint.get("hostname") or dashed(address)).lower()
                target = f"{label}.{name}"
                zone.ptr[ipaddress.ip_address(address).reverse_pointer + "."] = target
                for port in ports:
                    if port.get("name"):
                        key = f"_{port['name']}._{(port.get('protocol') or 'TCP').lower()}"
                        records.srv.setdefault(key, []).append((int(port["port"]), target))
                records.hosts.setdefault(label, [])
                if address not in records.hosts[label]:
                    records.hosts[label].append(address)
        zone.services[name] = records
    return zone
