"""`kube-proxy`: Services on this node through iptables (see the package docstring).

    kube-proxy --config=/var/lib/kube-proxy/config.conf [--kubeconfig=...] \
        [--hostname-override=node-1] [--cluster-cidr=10.244.0.0/16] [-v]

Watches Services and EndpointSlices, syncs rules (proxier), serves /healthz on 10256 and /metrics
on 10249. SIGTERM exits 0 and leaves the rules in place (traffic keeps flowing while it restarts).
Bad flags, config or kubeconfig: one line naming the culprit, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from provisioner.components.api.flags import Parser, UsageError
from provisioner.components.api.informer import InformerFactory

from . import config as configuration
from . import iptables, server
from .proxier import Proxier
from .rules import NodeContext

log = logging.getLogger("kube-proxy")




def parser() -> Parser:
    p = Parser(prog="kube-proxy", description="Network proxy for Services, iptables mode.")
    p.add_argument("--config", help="KubeProxyConfiguration file")
    p.add_argument("--kubeconfig", help="kubeconfig with kube-proxy's identity")
    p.add_argument("--hostname-override", help="this node's name (default: the hostname)")
    p.add_argument("--cluster-cidr", help="the pods' CIDR (pod traffic is not masqueraded)")
    p.add_argument("--healthz-bind-address")
    p.add_argument("--metrics-bind-address")
    p.add_argument("--proxy-mode", choices=("iptables",))
    p.add_argument("-v", "--v", dest="verbosity", type=int, nargs="?", const=2, default=0)
    return p


def settings(args: argparse.Namespace) -> configuration.ProxyConfig:
    config = configuration.load(args.config) if args.config else configuration.ProxyConfig()
    for flag, attribute in (("kubeconfig", "kubeconfig"), ("hostname_override", "hostname_override"),
                            ("cluster_cidr", "cluster_cidr"),
                            ("healthz_bind_address", "healthz_bind_address"),
                            ("metrics_bind_address", "metrics_bind_address")):
        if getattr(args, flag):
            setattr(config, attribute, getattr(args, flag))
    configuration.validate(config)
    if not config.kubeconfig:
        raise configuration.ConfigError("no kubeconfig: give --kubeconfig or "
                                        "clientConnection.kubeconfig in --config")
    return config


async def run(config: configuration.ProxyConfig) -> None:
    try:
        identity = kubeconfig.load(config.kubeconfig)
    except (OSError, ValueError, KeyError) as error:
        raise configuration.ConfigError(f"kubeconfig {config.kubeconfig}: {error}") from None
    if config.ignored:
        log.warning("ignoring KubeProxyConfiguration fields this kube-proxy does not implement: "
                    "%s", ", ".join(config.ignored))
    proxier = Proxier(NodeContext(config.node_name, config.cluster_cidr, config.masquerade_all),
                      config.sync_period, config.min_sync_period)
    await asyncio.to_thread(iptables.ensure_base)
    runners = [await server.serve(server.healthz_app(proxier),
                                  *configuration.bind_address(config.healthz_bind_address, "")),
               await server.serve(server.metrics_app(proxier),
                                  *configuration.bind_address(config.metrics_bind_address, ""))]
    client = Client(identity, user_agent="kube-proxy")
    informers = InformerFactory(client)
    informers.informer("", "v1", "services").add_handler(
        proxier.service_changed, lambda _old, new: proxier.service_changed(new),
        lambda obj: proxier.service_changed(obj, deleted=True))
    informers.informer("discovery.k8s.io", "v1", "endpointslices").add_handler(
        proxier.slice_changed, lambda _old, new: proxier.slice_changed(new),
        lambda obj: proxier.slice_changed(obj, deleted=True))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    informers.start()
    log.info("kube-proxy for node %s: waiting for the caches", config.node_name)
    while not await informers.wait_for_sync(timeout=5):
        log.info("still waiting for Services and EndpointSlices from the API server")
    syncing = asyncio.create_task(proxier.run())
    await stopping.wait()
    syncing.cancel()
    await informers.stop()
    await client.close()
    for runner in runners:
        await runner.cleanup()
    log.info("stopped; the rules stay in place")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        config = settings(args)
    except (UsageError, configuration.ConfigError) as error:
        print(f"kube-proxy: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbosity > 2 else
                        logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(config))
    except configuration.ConfigError as error:
        print(f"kube-proxy: {error}", file=sys.stderr)
        return 1
    except iptables.IptablesError as error:
        print(f"kube-proxy: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"kube-proxy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
