"""`provisioner-netagent`: the network agent (see the package docstring).

    provisioner-netagent --kubeconfig=/etc/kubernetes/netagent.conf --node-name=node-1 \
        --cluster-cidr=10.244.0.0/16 [--mode=auto|host-gw|vxlan] [--vxlan-vni=1] \
        [--vxlan-port=4789] [--resync-period=30] [--healthz-bind-address=0.0.0.0:9099] \
        [--cni-conf-dir=/etc/cni/net.d] [--enforce-network-policy=true]

The node's CNI configuration (this project's plugins, addresses from its podCIDR) is written in
--cni-conf-dir once the podCIDR is known. Routes are brought in line with the Nodes on every Node change and every --resync-period seconds;
a failure is logged and retried. SIGTERM exits 0 and leaves routes, the VXLAN device and the
masquerade rule in place. NetworkPolicies for this node's pods are enforced in the filter table
(see ``policy``), rewritten whole on every Pod, Namespace or NetworkPolicy change. Bad flags or
kubeconfig: one line, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys

from aiohttp import web

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from provisioner.components.api.flags import Parser, UsageError, serve
from provisioner.components.api.informer import InformerFactory

from . import cniconfig, masquerade, policy, policyfw, routes
from .plan import internal_ip, peer_routes, pod_cidr

log = logging.getLogger("provisioner-netagent")




def parser() -> Parser:
    p = Parser(prog="provisioner-netagent", description="Routes between nodes' pod networks.")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node-name", "--hostname-override", dest="node_name",
                   default=socket.gethostname())
    p.add_argument("--cluster-cidr", default="", help="pod network of the whole cluster "
                   "(pods leaving it are masqueraded)")
    p.add_argument("--mode", choices=("auto", "host-gw", "vxlan"), default="auto")
    p.add_argument("--vxlan-vni", type=int, default=1)
    p.add_argument("--vxlan-port", type=int, default=4789)
    p.add_argument("--resync-period", type=float, default=30.0)
    p.add_argument("--healthz-bind-address", default="0.0.0.0:9099")
    p.add_argument("--enforce-network-policy", choices=("true", "false"), default="true",
                   help="enforce NetworkPolicies for this node's pods with iptables")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d",
                   help="where the node's CNI network configuration is written ('' not to)")
    return p


class Agent:
    def __init__(self, args: argparse.Namespace, nodes, policy_sources=None):
        self.args = args
        self.nodes = nodes
        self.policy_sources = policy_sources      # (policies, pods, namespaces) informers
        self.wake = asyncio.Event()
        self.synced_once = False

    def changed(self, *_objects) -> None:
        self.wake.set()

    def sync(self) -> None:
        nodes = self.nodes.list()
        me = next((n for n in nodes if n["metadata"]["name"] == self.args.node_name), None)
        plan = peer_routes(nodes, self.args.node_name, routes.local_networks(), self.args.mode)
        vxlan_index = None
        if any(route.mode == "vxlan" for route in plan):
            own_cidr, own_ip = (pod_cidr(me), internal_ip(me)) if me else (None, None)
            if not own_cidr or not own_ip:
                raise RuntimeError(f"node {self.args.node_name} has no podCIDR or InternalIP "
                                   "yet: VXLAN routes wait for them")
            vxlan_index = routes.ensure_vxlan(own_ip, own_cidr, self.args.vxlan_vni,
                                              self.args.vxlan_port, None)
        for change in routes.sync(plan, vxlan_index):
            log.info("route %s", change)
        if self.args.cluster_cidr:
            masquerade.ensure(self.args.cluster_cidr)
        own_cidr = pod_cidr(me) if me else None
        # Over VXLAN, pods must fit the overlay's MTU or every full-size packet is fragmented
        # (measured: a quarter of the throughput); pods created from now on get it.
        mtu = routes.link_mtu(vxlan_index) if vxlan_index is not None else None
        if self.args.cni_conf_dir and own_cidr and \
                cniconfig.write(self.args.cni_conf_dir, own_cidr, mtu):
            log.info("wrote the CNI configuration for pod CIDR %s in %s", own_cidr,
                     self.args.cni_conf_dir)
        if self.policy_sources is not None:
            policies, pods, namespaces = (informer.list() for informer in self.policy_sources)
            policyfw.apply(policy.build(policies, pods, namespaces, self.args.node_name))
        self.synced_once = True

    async def run(self) -> None:
        backoff = 1.0
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), self.args.resync_period)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            try:
                await asyncio.to_thread(self.sync)
                backoff = 1.0
            except Exception as error:               # noqa: BLE001 - logged and retried
                log.error("syncing routes failed (retrying in %.0fs): %s", backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                self.wake.set()


async def run(args: argparse.Namespace) -> None:
    try:
        identity = kubeconfig.load(args.kubeconfig)
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(f"--kubeconfig {args.kubeconfig}: {error}") from None
    client = Client(identity, user_agent="provisioner-netagent")
    informers = InformerFactory(client)
    nodes = informers.informer("", "v1", "nodes")
    sources = None
    if args.enforce_network_policy == "true":
        sources = (informers.informer("networking.k8s.io", "v1", "networkpolicies"),
                   informers.informer("", "v1", "pods"), informers.informer("", "v1", "namespaces"))
    agent = Agent(args, nodes, sources)
    for informer in (nodes, *(sources or ())):
        informer.add_handler(agent.changed, agent.changed, agent.changed)
    host, _, port = args.healthz_bind_address.rpartition(":")

    async def healthz(_request) -> web.Response:
        return web.Response(status=200 if agent.synced_once else 503,
                            text="ok" if agent.synced_once else "not synced")
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    for name in routes.ensure_sysctls():
        log.warning("%s is not available (br_netfilter not loaded?): traffic between pods on "
                    "one bridge bypasses Services' and NetworkPolicies' rules", name)
    informers.start()
    await informers.wait_for_sync()
    task = asyncio.create_task(agent.run())
    agent.wake.set()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("network agent for node %s (mode %s)", args.node_name, args.mode)
    await stopping.wait()
    task.cancel()
    await informers.stop()
    await client.close()
    await runner.cleanup()
    log.info("stopped; routes stay in place")


def parse(argv: list[str] | None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.cluster_cidr:
        try:
            ipaddress.IPv4Network(args.cluster_cidr)
        except ValueError as error:
            raise UsageError(f"--cluster-cidr {args.cluster_cidr!r}: {error}") from None
    return args


def main(argv: list[str] | None = None) -> int:
    return serve("provisioner-netagent", lambda: parse(argv), run)


if __name__ == "__main__":
    sys.exit(main())
