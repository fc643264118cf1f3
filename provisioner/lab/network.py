"""The lab network on the operator machine: one Linux bridge per lab, a fixed /24 per bridge.

Place: between lab.py (which records the choice in the lab's state) and machine.py (whose
systemd-nspawn attaches each host's veth to the bridge with `--network-bridge`). A lab with
subnet index X owns bridge `plab<X>` with 10.213.X.1/24; its hosts are 10.213.X.11, .12, ...
The index is picked so that it is free both in the lab state root and on the machine itself
(another state root, e.g. a test run's, may hold a live lab too). No NAT: lab hosts need no
internet, only the operator and each other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from provisioner.errors import ProvisionerError

NETWORK_PREFIX = "10.213"
FIRST_HOST_OCTET = 11
MAX_HOSTS = 200  # .11 .. .210 stay inside the /24
BRIDGE_PREFIX = "plab"


def bridge_name(index: int) -> str:
    return f"{BRIDGE_PREFIX}{index}"


def subnet(index: int) -> str:
    return f"{NETWORK_PREFIX}.{index}.0/24"


def gateway(index: int) -> str:
    return f"{NETWORK_PREFIX}.{index}.1"


def host_address(index: int, number: int) -> str:
    """Address of host `number` (1-based) in lab subnet `index`."""
    if not 1 <= number <= MAX_HOSTS:
        raise ProvisionerError(f"a lab holds 1 to {MAX_HOSTS} hosts, not {number}")
    return f"{NETWORK_PREFIX}.{index}.{FIRST_HOST_OCTET + number - 1}"


def pick_subnet_index(taken_by_labs: Iterable[int], in_use_on_machine: Iterable[str],
                      preferred: int | None = None) -> int:
    """`preferred` if free, else the lowest index no lab records and no address on this
    machine falls into."""
    taken = set(taken_by_labs)
    networks = [ipaddress.ip_network(subnet(i)) for i in range(256)]
    for address in in_use_on_machine:
        ip = ipaddress.ip_interface(address).ip
        for i, net in enumerate(networks):
            if ip in net:
                taken.add(i)
    for index in ([preferred] if preferred is not None else []) + list(range(256)):
        if index not in taken:
            return index
    raise ProvisionerError(f"no free lab subnet left in {NETWORK_PREFIX}.0.0/16")


def addresses_on_machine() -> list[str]:
    """Every IPv4 address configured on any link of this machine, as `a.b.c.d/len`."""
    with IPRoute() as ipr:
        return [
            f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"
            for msg in ipr.get_addr(family=2)
        ]


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def ensure_bridge(index: int) -> bool:
    """Create and bring up the lab bridge with its gateway address; True if anything changed."""
    name = bridge_name(index)
    changed = False
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                ipr.link("add", ifname=name, kind="bridge")
                found = ipr.link_lookup(ifname=name)
                changed = True
            link = found[0]
            wanted = gateway(index)
            present = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=link, family=2)}
            if wanted not in present:
                ipr.addr("add", index=link, address=wanted, prefixlen=24)
                changed = True
            if not ipr.get_links(link)[0]["flags"] & 1:  # IFF_UP
                ipr.link("set", index=link, state="up")
                changed = True
    except NetlinkError as exc:
        raise ProvisionerError(f"creating lab bridge {name} ({subnet(index)}) failed: {exc}")
    return changed


def delete_bridge(index: int) -> bool:
    """Delete the bridge and any veth still enslaved to it; True if something was deleted."""
    name = bridge_name(index)
    deleted = False
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        for link in ipr.get_links():
            if link.get_attr("IFLA_MASTER") == found[0]:
                try:
                    ipr.link("del", index=link["index"])
                except NetlinkError:
                    pass  # the veth vanished with its namespace meanwhile
        try:
            ipr.link("del", index=found[0])
            deleted = True
        except NetlinkError as exc:
            raise ProvisionerError(f"deleting lab bridge {name} failed: {exc}")
    return deleted


def bridge_ports(index: int) -> list[str]:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=bridge_name(index))
        if not found:
            return []
        return [
            link.get_attr("IFLA_IFNAME")
            for link in ipr.get_links()
            if link.get_attr("IFLA_MASTER") == found[0]
        ]
