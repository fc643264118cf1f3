"""Netlink work for the bridge network (``runtime.net``): the bridge, veth pairs, sysctls.

Everything goes through pyroute2 (one short-lived ``IPRoute`` per operation, so calls from several
daemon threads never share a socket); nothing runs ``ip``. Host-side veth names are derived from the
bridge and container id, so ``release`` finds a container's veth even when its saved state is gone.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns
from .errors import NetworkError

EEXIST = 17
ENODEV = 19
IFNAMSIZ = 15


def host_veth_name(bridge: str, container_id: str) -> str:
    """A unique (per bridge and container), stable, 15-character interface name."""
    digest = hashlib.sha256(f"{bridge}/{container_id}".encode()).hexdigest()
    return ("vprt" + digest)[:IFNAMSIZ]


def write_sysctl(name: str, value: str) -> None:
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise NetworkError(
            f"cannot set {name}={value} ({path}): {exc.strerror}; run as root"
        ) from exc


def link_index(ipr: IPRoute, name: str) -> int | None:
    # a get by name, not pyroute2's link_lookup, which dumps and decodes every link on the host
    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as exc:
        if exc.code == ENODEV:
            return None
        raise


def ensure_bridge_link(name: str, gateway: ipaddress.IPv4Address, prefixlen: int) -> int:
    """Create the bridge if missing, give it the gateway address, bring it up; returns its MTU."""
    with IPRoute() as ipr:
        index = link_index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != EEXIST:  # another thread or process made it meanwhile
                    raise NetworkError(f"cannot create bridge {name}: {exc}") from exc
            index = link_index(ipr, name)
        link = ipr.link("get", index=index)[0]
        kind = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
        if kind != "bridge":
            raise NetworkError(
                f"interface {name} exists but is a {kind or 'plain'} interface, not a bridge; "
                "remove it or choose another bridge name"
            )
        have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.addr("dump", index=index)}
        if (str(gateway), prefixlen) not in have:
            try:
                ipr.addr("add", index=index, address=str(gateway), prefixlen=prefixlen)
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise NetworkError(
                        f"cannot add {gateway}/{prefixlen} to bridge {name}: {exc}"
                    ) from exc
        ipr.link("set", index=index, state="up")
        return int(ipr.link("get", index=index)[0].get("IFLA_MTU"))


def delete_link(name: str) -> bool:
    """Delete an interface by name; False if it did not exist."""
    with IPRoute() as ipr:
        index = link_index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code == ENODEV:
                return False
            raise
        return True


def bridge_ports(bridge: str) -> list[str]:
    """Names of the interfaces enslaved to the bridge."""
    with IPRoute() as ipr:
        index = link_index(ipr, bridge)
        if index is None:
            return []
        return [link.get("IFLA_IFNAME") for link in ipr.link("dump", master=index)]


@dataclass
class VethSpec:
    host_name: str
    bridge: str
    netns_path: str
    address: ipaddress.IPv4Address
    prefixlen: int
    gateway: ipaddress.IPv4Address
    mtu: int


def create_veth(spec: VethSpec) -> str:
    """Make the pair with its container end born as eth0 inside the netns; returns eth0's MAC.

    On failure the host end is deleted (which deletes both ends), so nothing is left behind.
    """
    with IPRoute() as ipr:
        bridge_index = link_index(ipr, spec.bridge)
        if bridge_index is None:
            raise NetworkError(f"bridge {spec.bridge} does not exist; the network was torn down")
        ipr.link(
            "add",
            ifname=spec.host_name,
            kind="veth",
            mtu=spec.mtu,
            peer={"ifname": "eth0", "mtu": spec.mtu, "net_ns_fd": spec.netns_path},
        )
        try:
            host_index = link_index(ipr, spec.host_name)
            ipr.link("set", index=host_index, master=bridge_index)
            # Hairpin: with br_netfilter loaded, a container reaching its own published port is
            # DNATed at the bridge and must be sent back out of the port it came in by.
            ipr.brport("set", index=host_index, mode=1)
            ipr.link("set", index=host_index, state="up")
            return netns.run_inside(spec.netns_path, lambda: _configure_eth0(spec))
        except BaseException:
            delete_link(spec.host_name)
            raise


def _configure_eth0(spec: VethSpec) -> str:
    """Inside the container's namespace: address, up, default route; returns eth0's MAC."""
    with IPRoute() as inside:
        link = inside.link("get", ifname="eth0")[0]
        eth0 = link["index"]
        inside.addr("add", index=eth0, address=str(spec.address), prefixlen=spec.prefixlen)
        inside.link("set", index=eth0, state="up")
        inside.route("add", dst="0.0.0.0/0", gateway=str(spec.gateway), oif=eth0)
        return str(link.get("IFLA_ADDRESS"))
