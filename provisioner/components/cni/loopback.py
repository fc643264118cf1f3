"""cni/loopback: the ``provisioner-loopback`` plugin: ``lo`` up in the pod's namespace (ADD), down
again (DEL; a namespace already gone is fine), and CHECK that it is up."""

from __future__ import annotations

import os

from pyroute2 import IPRoute

from .protocol import UNKNOWN_CONTAINER, CniFailure, Invocation


def _set_lo(netns: str, state: str) -> None:
    with IPRoute(netns=netns, flags=0) as inside:
        inside.link("set", index=inside.link_lookup(ifname="lo")[0], state=state)


def add(invocation: Invocation) -> dict:
    invocation.needs("CNI_NETNS")
    _set_lo(invocation.netns, "up")
    if invocation.prev_result:          # chained: the pod's result is the earlier plugins'
        return invocation.prev_result
    return {"interfaces": [{"name": "lo", "sandbox": invocation.netns}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}]}


def delete(invocation: Invocation) -> None:
    if invocation.netns and os.path.exists(invocation.netns):
        _set_lo(invocation.netns, "down")


def check(invocation: Invocation) -> None:
    invocation.needs("CNI_NETNS")
    with IPRoute(netns=invocation.netns, flags=0) as inside:
        link = inside.link("get", index=inside.link_lookup(ifname="lo")[0])[0]
        if not link["flags"] & 1:                    # IFF_UP
            raise CniFailure(UNKNOWN_CONTAINER, f"lo is down in {invocation.netns}")
