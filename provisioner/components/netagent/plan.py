"""netagent/plan: which route each other node's podCIDR needs, from Nodes and this host's
addresses. Pure: ``main`` feeds informer objects and ``routes.local_networks()``.

host-gw when the peer's InternalIP lies in a subnet this host has an address in (same link, so the
peer is the next hop); VXLAN otherwise (or always / never, by --mode).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerRoute:
    node: str
    pod_cidr: str
    node_ip: str
    mode: str            # "host-gw" | "vxlan"


def internal_ip(node: dict) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and ":" not in address.get("address", ""):
            return address["address"]
    return None


def pod_cidr(node: dict) -> str | None:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return next((c for c in cidrs if ":" not in c), None)


def peer_routes(nodes: list[dict], me: str, local_networks: list[str],
                mode: str = "auto") -> list[PeerRoute]:
    networks = [ipaddress.IPv4Network(n, strict=False) for n in local_networks]
    routes = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        cidr, address = pod_cidr(node), internal_ip(node)
        if name == me or not cidr or not address:
            continue
        shared = any(ipaddress.IPv4Address(address) in network for network in networks)
        chosen = mode if mode != "auto" else ("host-gw" if shared else "vxlan")
        routes.append(PeerRoute(name, cidr, address, chosen))
    return sorted(routes, key=lambda r: r.pod_cidr)


def vtep_address(cidr: str) -> str:
    """A node's VXLAN device address: the network address of its podCIDR (as flannel does)."""
    return str(ipaddress.IPv4Network(cidr, strict=False).network_address)
