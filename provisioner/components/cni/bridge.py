"""cni/bridge: the ``provisioner-bridge`` plugin: a Linux bridge on the host (with the gateway
address when ``isGateway``), a veth pair per pod (host end on the bridge, hairpin on, the other end
``CNI_IFNAME`` in the pod's namespace with the IPAM plugin's addresses and routes), and masquerade
of the pod's traffic leaving the pod network (``ipMasq``).

Configuration: ``bridge`` (default cni0), ``isGateway``, ``ipMasq``, ``hairpinMode`` (default on),
``mtu`` (default the bridge's, 1500 for a new one), ``ipam`` (delegated, e.g.
``provisioner-host-local`` or the reference ``host-local``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..runtime.net.netns import run_inside
from . import iptables
from .protocol import (
    INVALID_CONFIGURATION,
    IO_FAILURE,
    UNKNOWN_CONTAINER,
    CniFailure,
    Invocation,
    delegate,
)

EEXIST = 17


def host_veth(invocation: Invocation) -> str:
    """Stable per (network, container, interface): DEL finds it without any saved state."""
    key = f"{invocation.network}/{invocation.container_id}/{invocation.ifname}"
    return "vpc" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _ipam_type(invocation: Invocation) -> str:
    kind = (invocation.config.get("ipam") or {}).get("type")
    if not kind:
        raise CniFailure(INVALID_CONFIGURATION, "provisioner-bridge needs ipam.type "
                         "(e.g. provisioner-host-local)")
    return kind


def _ensure_bridge(ipr: IPRoute, name: str, gateways: list[ipaddress.IPv4Interface]) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as error:
            if error.code != EEXIST:
                raise CniFailure(IO_FAILURE, f"cannot create bridge {name}: {error}") from None
        found = ipr.link_lookup(ifname=name)
    index = found[0]
    kind = ipr.link("get", index=index)[0].get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
    if kind != "bridge":
        raise CniFailure(INVALID_CONFIGURATION, f"interface {name} exists and is not a bridge")
    have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.addr("dump", index=index)}
    for gateway in gateways:
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            try:
                ipr.addr("add", index=index, address=str(gateway.ip),
                         prefixlen=gateway.network.prefixlen)
            except NetlinkError as error:
                if error.code != EEXIST:
                    raise CniFailure(IO_FAILURE, f"cannot add {gateway} to {name}: {error}") \
                        from None
    ipr.link("set", index=index, state="up")
    return index


def _masquerade_rule(invocation: Invocation, address: ipaddress.IPv4Interface) -> list[str]:
    return ["-s", str(address.ip), "!", "-d", str(address.network), "-m", "comment",
            "--comment", f"provisioner-bridge {invocation.network} {invocation.container_id}"[:255],
            "-j", "MASQUERADE"]


def add(invocation: Invocation) -> dict:
    invocation.needs("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME")
    config = invocation.config
    ipam = delegate(invocation, _ipam_type(invocation))
    try:
        return _attach(invocation, config, ipam)
    except BaseException:
        delegate(invocation, _ipam_type(invocation), "DEL")
        raise


def _attach(invocation: Invocation, config: dict, ipam: dict) -> dict:
    bridge = config.get("bridge") or "cni0"
    addresses = [(ipaddress.IPv4Interface(ip["address"]), ip.get("gateway"))
                 for ip in ipam.get("ips", []) if ":" not in ip["address"]]
    if not addresses:
        raise CniFailure(IO_FAILURE, "the IPAM plugin returned no IPv4 address")
    gateways = [ipaddress.IPv4Interface(f"{gw}/{address.network.prefixlen}")
                for address, gw in addresses if gw] if config.get("isGateway") else []
    veth = host_veth(invocation)
    with IPRoute() as ipr:
        bridge_index = _ensure_bridge(ipr, bridge, gateways)
        mtu = int(config.get("mtu") or ipr.link("get", index=bridge_index)[0].get("IFLA_MTU"))
        for stale in ipr.link_lookup(ifname=veth):       # a leftover of an interrupted ADD
            ipr.link("del", index=stale)
        ipr.link("add", ifname=veth, kind="veth", mtu=mtu,
                 peer={"ifname": invocation.ifname, "mtu": mtu, "net_ns_fd": invocation.netns})
        try:
            host_index = ipr.link_lookup(ifname=veth)[0]
            ipr.link("set", index=host_index, master=bridge_index)
            ipr.brport("set", index=host_index, mode=int(config.get("hairpinMode", True)))
            ipr.link("set", index=host_index, state="up")
            host_mac = ipr.link("get", index=host_index)[0].get("IFLA_ADDRESS")
            bridge_mac = ipr.link("get", index=bridge_index)[0].get("IFLA_ADDRESS")
            pod_mac = _configure_inside(invocation, addresses, ipam.get("routes") or [])
        except BaseException:
            ipr.link("del", index=ipr.link_lookup(ifname=veth)[0])
            raise
    if config.get("ipMasq"):
        for address, _ in addresses:
            iptables.ensure_rule("nat", "POSTROUTING", _masquerade_rule(invocation, address))
    with open("/proc/sys/net/ipv4/ip_forward", "w") as sysctl:
        sysctl.write("1")
    return {"interfaces": [{"name": bridge, "mac": bridge_mac},
                           {"name": veth, "mac": host_mac},
                           {"name": invocation.ifname, "mac": pod_mac,
                            "sandbox": invocation.netns}],
            "ips": [{"address": str(address), **({"gateway": gw} if gw else {}), "interface": 2}
                    for address, gw in addresses],
            "routes": ipam.get("routes") or [], "dns": config.get("dns") or {}}


def _configure_inside(invocation: Invocation, addresses, routes: list[dict]) -> str:
    # from a thread that joined the pod's netns: pyroute2's IPRoute(netns=...) forks a helper
    return run_inside(invocation.netns, lambda: _configure_here(invocation, addresses, routes))


def _configure_here(invocation: Invocation, addresses, routes: list[dict]) -> str:
    with IPRoute() as inside:
        index = inside.link_lookup(ifname=invocation.ifname)[0]
        for address, _ in addresses:
            inside.addr("add", index=index, address=str(address.ip),
                        prefixlen=address.network.prefixlen)
        inside.link("set", index=index, state="up")
        default_gateway = next((gw for _, gw in addresses if gw), None)
        for route in routes:
            gateway = route.get("gw") or default_gateway
            if ":" in route["dst"]:
                continue
            inside.route("add", dst=route["dst"], oif=index,
                         **({"gateway": gateway} if gateway else {}))
        return inside.link("get", index=index)[0].get("IFLA_ADDRESS")


def delete(invocation: Invocation) -> None:
    invocation.needs("CNI_CONTAINERID", "CNI_IFNAME")
    if (invocation.config.get("ipam") or {}).get("type"):
        delegate(invocation, _ipam_type(invocation), "DEL")
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=host_veth(invocation)):
            try:
                ipr.link("del", index=index)
            except NetlinkError:
                pass                                   # gone with its namespace meanwhile
    for ip in invocation.prev_result.get("ips", []):
        if ":" not in ip["address"]:
            iptables.delete_rule("nat", "POSTROUTING", _masquerade_rule(
                invocation, ipaddress.IPv4Interface(ip["address"])))


def check(invocation: Invocation) -> None:
    invocation.needs("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME")
    delegate(invocation, _ipam_type(invocation), "CHECK")
    if not os.path.exists(invocation.netns):
        raise CniFailure(UNKNOWN_CONTAINER, f"network namespace {invocation.netns} is gone")
    found, have = run_inside(invocation.netns, lambda: _addresses_here(invocation.ifname))
    wanted = {ip["address"] for ip in invocation.prev_result.get("ips", [])
              if ip.get("interface", 2) == 2}
    if not found or not wanted <= have:
        raise CniFailure(UNKNOWN_CONTAINER, f"{invocation.ifname} in {invocation.netns} has "
                         f"{sorted(have) or 'no addresses'}, expected {sorted(wanted)}")
    with IPRoute() as ipr:
        if not ipr.link_lookup(ifname=host_veth(invocation)):
            raise CniFailure(UNKNOWN_CONTAINER, f"host interface {host_veth(invocation)} is gone")


def _addresses_here(ifname: str) -> tuple[list[int], set[str]]:
    with IPRoute() as inside:
        found = inside.link_lookup(ifname=ifname)
        return found, ({f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                        for a in inside.addr("dump", index=found[0])} if found else set())
