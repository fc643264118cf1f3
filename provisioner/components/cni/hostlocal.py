"""cni/hostlocal: the ``provisioner-host-local`` IPAM plugin: addresses from one subnet (the node's
pod CIDR), one file per address under ``<dataDir>/<network>/`` naming its owner (container id and
interface), handed out round-robin under a lock (the runtime's HostLocalIPAM does the file work).

Configuration (``ipam``): ``subnet`` or ``ranges: [[{"subnet": ...}]]`` (the first range),
``routes`` (default: none), ``dataDir`` (default /var/lib/cni/networks). The gateway is the
subnet's first address.
"""

from __future__ import annotations

import ipaddress
import os

from ..runtime.net.errors import NetworkError
from ..runtime.net.ipam import HostLocalIPAM
from .protocol import INVALID_CONFIGURATION, IO_FAILURE, UNKNOWN_CONTAINER, CniFailure, Invocation

DEFAULT_DATA_DIR = "/var/lib/cni/networks"


def _subnet(ipam: dict) -> ipaddress.IPv4Network:
    subnet = ipam.get("subnet")
    ranges = ipam.get("ranges")
    if not subnet and ranges:
        try:
            subnet = ranges[0][0]["subnet"]
        except (IndexError, KeyError, TypeError):
            raise CniFailure(INVALID_CONFIGURATION,
                             'ipam.ranges must look like [[{"subnet": "10.244.1.0/24"}]]') from None
    if not subnet:
        raise CniFailure(INVALID_CONFIGURATION, "ipam needs a subnet (or ranges): the node's "
                         "pod CIDR, e.g. 10.244.1.0/24")
    try:
        return ipaddress.IPv4Network(subnet)
    except ValueError as error:
        raise CniFailure(INVALID_CONFIGURATION, f"ipam subnet {subnet!r}: {error}") from None


def _store(invocation: Invocation) -> tuple[HostLocalIPAM, str]:
    ipam = invocation.config.get("ipam") or {}
    directory = os.path.join(ipam.get("dataDir") or DEFAULT_DATA_DIR, invocation.network)
    try:
        store = HostLocalIPAM(directory, _subnet(ipam))
    except NetworkError as error:
        raise CniFailure(INVALID_CONFIGURATION, str(error)) from None
    return store, f"{invocation.container_id}\n{invocation.ifname}"


def add(invocation: Invocation) -> dict:
    invocation.needs("CNI_CONTAINERID", "CNI_IFNAME")
    store, owner = _store(invocation)
    try:
        address = store.allocate(owner)
    except NetworkError as error:
        raise CniFailure(IO_FAILURE, str(error)) from None
    routes = (invocation.config.get("ipam") or {}).get("routes") or []
    return {"ips": [{"address": f"{address}/{store.subnet.prefixlen}",
                     "gateway": str(store.gateway)}],
            "routes": [{"dst": r["dst"], **({"gw": r["gw"]} if r.get("gw") else {})}
                       for r in routes]}


def delete(invocation: Invocation) -> None:
    store, owner = _store(invocation)
    store.release(owner)


def check(invocation: Invocation) -> None:
    store, owner = _store(invocation)
    if owner not in store.allocations():
        raise CniFailure(UNKNOWN_CONTAINER, f"no address is allocated to container "
                         f"{invocation.container_id} ({invocation.ifname}) in {store.subnet}")
