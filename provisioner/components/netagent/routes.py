"""netagent/routes: the kernel side, through pyroute2. Our routes carry protocol RTPROT_AGENT so
the agent only ever replaces or removes routes it made. VXLAN: one device (``provx0``) with this
node's VTEP address (its podCIDR's network address /32); a peer's podCIDR is routed ``onlink`` via
the peer's VTEP address, whose ARP and FDB entries are set statically from the Node (MAC derived
from the VTEP address, so no annotation exchange is needed)."""

from __future__ import annotations

import ipaddress
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .plan import PeerRoute, vtep_address

RTPROT_AGENT = 177          # our routes' protocol: only these are ever changed or removed
VXLAN_DEVICE = "provx0"
NUD_PERMANENT = 0x80
AF_BRIDGE = 7
NTF_SELF = 0x02
EEXIST = 17


SYSCTLS = {
    "net.ipv4.ip_forward": "1",                        # nodes route pod traffic
    # pods on one bridge: their traffic must pass iptables (Services' DNAT, NetworkPolicies)
    "net.bridge.bridge-nf-call-iptables": "1",
}


def ensure_sysctls() -> list[str]:
    """Set what pod networking needs; returns the ones this kernel lacks (br_netfilter absent)."""
    missing = []
    for name, value in SYSCTLS.items():
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path) as current:
                if current.read().strip() == value:
                    continue
            with open(path, "w") as sink:
                sink.write(value)
        except FileNotFoundError:
            missing.append(name)
    return missing


def local_networks() -> list[str]:
    """The subnets of this host's IPv4 addresses (where a peer is one hop away)."""
    with IPRoute() as ipr:
        return [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in
                ipr.addr("dump", family=socket.AF_INET)
                if not a.get("IFA_ADDRESS", "").startswith("127.") and a["prefixlen"] < 32]


def vtep_mac(address: str) -> str:
    """A stable locally-administered MAC for a VTEP address: 0a:58:a.b.c.d (as ovn-k does)."""
    return "0a:58:" + ":".join(f"{octet:02x}" for octet in ipaddress.IPv4Address(address).packed)


VXLAN_OVERHEAD = 50          # outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)


def ensure_vxlan(local_ip: str, own_cidr: str, vni: int, port: int, mtu: int | None) -> int:
    """The VXLAN device, its MTU the underlay's (the link holding local_ip) less the overhead."""
    with IPRoute() as ipr:
        if mtu is None:
            underlay = [a["index"] for a in ipr.addr("dump", family=socket.AF_INET)
                        if a.get("IFA_ADDRESS") == local_ip]
            base = int(ipr.link("get", index=underlay[0])[0].get("IFLA_MTU")) if underlay else 1500
            mtu = base - VXLAN_OVERHEAD
        found = ipr.link_lookup(ifname=VXLAN_DEVICE)
        if not found:
            ipr.link("add", ifname=VXLAN_DEVICE, kind="vxlan", vxlan_id=vni, vxlan_port=port,
                     vxlan_local=local_ip, vxlan_learning=0,
                     address=vtep_mac(vtep_address(own_cidr)), mtu=mtu)
            found = ipr.link_lookup(ifname=VXLAN_DEVICE)
        index = found[0]
        if int(ipr.link("get", index=index)[0].get("IFLA_MTU")) != mtu:
            ipr.link("set", index=index, mtu=mtu)
        address = vtep_address(own_cidr)
        have = {a.get("IFA_ADDRESS") for a in ipr.addr("dump", index=index)}
        if address not in have:
            ipr.addr("add", index=index, address=address, prefixlen=32)
        ipr.link("set", index=index, state="up")
        return index


def link_mtu(index: int) -> int:
    with IPRoute() as ipr:
        return int(ipr.link("get", index=index)[0].get("IFLA_MTU"))


def _wanted(route: PeerRoute, vxlan_index: int | None) -> dict:
    if route.mode == "vxlan":
        return {"dst": route.pod_cidr, "gateway": vtep_address(route.pod_cidr),
                "oif": vxlan_index, "flags": 4}               # RTNH_F_ONLINK
    return {"dst": route.pod_cidr, "gateway": route.node_ip}


def sync(routes: list[PeerRoute], vxlan_index: int | None) -> list[str]:
    """Make our routes exactly ``routes``: add or replace what differs, remove ours not wanted.
    Returns what changed, for the log."""
    changes = []
    with IPRoute() as ipr:
        ours = {}
        for existing in ipr.route("dump", family=socket.AF_INET, proto=RTPROT_AGENT):
            dst = f"{existing.get('RTA_DST')}/{existing['dst_len']}"
            ours[dst] = (existing.get("RTA_GATEWAY"), existing.get("RTA_OIF"))
        wanted = {r.pod_cidr: r for r in routes}
        for cidr, route in wanted.items():
            spec = _wanted(route, vxlan_index)
            if route.mode == "vxlan":
                _ensure_peer_vtep(ipr, vxlan_index, route)
            current = ours.get(str(ipaddress.IPv4Network(cidr)))
            if current and current[0] == spec["gateway"] and \
                    (route.mode != "vxlan" or current[1] == vxlan_index):
                continue
            ipr.route("replace", proto=RTPROT_AGENT, **spec)
            changes.append(f"{cidr} via {spec['gateway']} ({route.mode}, node {route.node})")
        for dst in ours:
            if dst not in {str(ipaddress.IPv4Network(c)) for c in wanted}:
                try:
                    ipr.route("del", dst=dst, proto=RTPROT_AGENT)
                    changes.append(f"{dst} removed")
                except NetlinkError:
                    pass
    return changes


def _ensure_peer_vtep(ipr: IPRoute, index: int, route: PeerRoute) -> None:
    peer = vtep_address(route.pod_cidr)
    mac = vtep_mac(peer)
    ipr.neigh("replace", ifindex=index, dst=peer, lladdr=mac, state=NUD_PERMANENT)
    # the FDB entry of the VXLAN device itself (AF_BRIDGE, NTF_SELF): peer VTEP MAC -> its node
    ipr.neigh("replace", ifindex=index, lladdr=mac, dst=route.node_ip, state=NUD_PERMANENT,
              family=AF_BRIDGE, flags=NTF_SELF)
