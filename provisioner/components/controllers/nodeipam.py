"""The nodeipam controller: a pod CIDR for each node (--allocate-node-cidrs).

Subnets of --node-cidr-mask-size are carved from --cluster-cidr in order; the first free one goes
to a node without spec.podCIDR. One worker and an in-memory record of what was handed out make
a lagging cache unable to give one subnet to two nodes. A full range is reported as a
CIDRNotAvailable event on the node.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from provisioner.components.api.client import ApiStatusError

from .base import Controller


def next_free(cluster: ipaddress.IPv4Network | ipaddress.IPv6Network, mask: int,
              used: Iterable[str]) -> str | None:
    taken = set()
    for cidr in used:
        try:
            taken.add(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    for subnet in cluster.subnets(new_prefix=mask):
        if not any(subnet.overlaps(t) for t in taken):
            return str(subnet)
    return None


class NodeIpamController(Controller):
    name = "nodeipam"

    def __init__(self, ctx, workers: int = 1) -> None:
        super().__init__(ctx, workers=1)  # allocation is serial by design

    def setup(self) -> None:
        opts = self.ctx.options
        self.enabled = bool(opts.allocate_node_cidrs and opts.cluster_cidr)
        self.cluster = ipaddress.ip_network(opts.cluster_cidr) if opts.cluster_cidr else None
        self.mask = opts.node_cidr_mask_size
        self.given: dict[str, str] = {}  # node -> CIDR handed out by this process
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.nodes.add_handler(self.enqueue, lambda _o, n: self.enqueue(n),
                               lambda n: self.given.pop(n["metadata"]["name"], None))

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if not self.enabled or node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        used = [(n.get("spec") or {}).get("podCIDR") or "" for n in self.nodes.list()]
        used += [c for n, c in self.given.items() if n != key]
        cidr = self.given.get(key) or next_free(self.cluster, self.mask, used)
        if cidr is None:
            self.ctx.event(node, "Normal", "CIDRNotAvailable",
                           f"Node {key} status is now: CIDRNotAvailable")
            return
        self.given[key] = cidr
        try:
            await self.api.patch("", "v1", "nodes", key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except ApiStatusError as exc:
            if exc.code == 404:
                self.given.pop(key, None)
                return
            raise
