"""`provisioner-dns`: the cluster DNS server (see the package docstring).

    provisioner-dns --kubeconfig=/etc/kubernetes/dns.conf [--cluster-domain=cluster.local] \
        [--bind-address=0.0.0.0] [--dns-port=53] [--upstream=10.0.0.2 ...] \
        [--health-port=8080] [--ready-port=8181] [--metrics-port=9153]

Without --upstream, the nameservers of --resolv-conf (the node's /etc/resolv.conf) are used.
/ready answers 200 once Services and EndpointSlices are listed; /health answers 200 while running.
SIGTERM exits 0. Bad flags or kubeconfig: one line, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from provisioner.components.api.flags import Parser, UsageError, serve
from provisioner.components.api.informer import InformerFactory

from .forward import Forwarder, parse_upstream, upstreams_from_resolv_conf
from .server import DnsServer, listen_dns, metrics_body, serve_http
from .zone import SERVICE_NAME_LABEL, Zone, build

log = logging.getLogger("provisioner-dns")




def parser() -> Parser:
    p = Parser(prog="provisioner-dns", description="Cluster DNS for Services and Pods.")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--bind-address", default="0.0.0.0")
    p.add_argument("--dns-port", type=int, default=53)
    p.add_argument("--upstream", action="append", default=[],
                   help="upstream resolver (address[:port]); repeat for more")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf")
    p.add_argument("--cache-ttl", type=int, default=30, help="longest time an answer is cached")
    p.add_argument("--health-port", type=int, default=8080)
    p.add_argument("--ready-port", type=int, default=8181)
    p.add_argument("--metrics-port", type=int, default=9153)
    return p


class ClusterZone:
    """The zone, rebuilt on the first query after a Service or EndpointSlice changed."""

    def __init__(self, domain: str, services, slices):
        self.domain = domain
        self.services = services
        self.slices = slices
        self.dirty = True
        self.zone = build(domain, [], {})

    def changed(self, *_objects) -> None:
        self.dirty = True

    def __call__(self) -> Zone:
        if self.dirty:
            self.dirty = False
            by_service: dict[str, list[dict]] = {}
            for item in self.slices.list():
                meta = item.get("metadata") or {}
                name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
                if name:
                    by_service.setdefault(f"{meta.get('namespace')}/{name}", []).append(item)
            self.zone = build(self.domain, self.services.list(), by_service)
        return self.zone


async def run(args: argparse.Namespace) -> None:
    try:
        identity = kubeconfig.load(args.kubeconfig)
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(f"--kubeconfig {args.kubeconfig}: {error}") from None
    upstreams = args.upstream or upstreams_from_resolv_conf(args.resolv_conf)
    for upstream in upstreams:
        try:
            parse_upstream(upstream)
        except ValueError:
            raise UsageError(f"--upstream {upstream!r}: use address or address:port") from None
    if not upstreams:
        log.warning("no upstream resolvers (no --upstream, none in %s): names outside the "
                    "cluster get SERVFAIL", args.resolv_conf)
    client = Client(identity, user_agent="provisioner-dns")
    informers = InformerFactory(client)
    services = informers.informer("", "v1", "services")
    slices = informers.informer("discovery.k8s.io", "v1", "endpointslices")
    zone = ClusterZone(args.cluster_domain, services, slices)
    for informer in (services, slices):
        informer.add_handler(zone.changed, zone.changed, zone.changed)
    server = DnsServer(zone, Forwarder(upstreams, max_ttl=args.cache_ttl),
                       f"dns://:{args.dns_port}")
    informers.start()
    listeners = await listen_dns(server, args.bind_address, args.dns_port)
    ok = (200, b"OK", "text/plain")
    runners = [
        await serve_http(args.bind_address, {"/health": lambda: ok}, args.health_port),
        await serve_http(args.bind_address, {"/ready": lambda: ok if informers.has_synced()
                                             else (503, b"not synced", "text/plain")},
                         args.ready_port),
        await serve_http(args.bind_address, {"/metrics": lambda: metrics_body(server)},
                         args.metrics_port)]
    log.info("serving %s on %s:%d (upstreams %s)", zone.domain, args.bind_address, args.dns_port,
             ", ".join(upstreams) or "none")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    listeners[0].close()
    listeners[1].close()
    for runner in runners:
        await runner.cleanup()
    await informers.stop()
    await client.close()


def main(argv: list[str] | None = None) -> int:
    return serve("provisioner-dns", lambda: parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
