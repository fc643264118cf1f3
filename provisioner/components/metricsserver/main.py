"""`metrics-server`: the process, with metrics-server's flag names.

    metrics-server --kubeconfig=FILE --secure-port=10250 [--bind-address=0.0.0.0] \
        [--tls-cert-file=F --tls-private-key-file=F | --cert-dir=DIR] [--metric-resolution=15s] \
        [--kubelet-insecure-tls | --kubelet-certificate-authority=F] \
        [--kubelet-preferred-address-types=Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP] \
        [--kubelet-use-node-status-port] [--kubelet-port=10250] \
        [--requestheader-client-ca-file=F --requestheader-allowed-names=a,b --client-ca-file=F]

Without --kubeconfig it runs in-cluster (the pod's service-account token and CA). Without the CA
flags, kube-system/extension-apiserver-authentication says which front proxy and clients to trust.
Bad flags: one line, exit 1. SIGTERM exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import ssl
import sys
import tempfile

import yaml
from aiohttp import web

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.flags import Parser, UsageError, serve
from provisioner.components.api.informer import InformerFactory
from provisioner.components.api.server import self_signed

from .api import MetricsApi
from .auth import AuthConfig, Authenticator, Authorizer, server_ssl
from .scraper import DEFAULT_ADDRESS_TYPES, KubeletOptions, Scraper
from .store import Store

log = logging.getLogger("metrics-server")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
FIRST_RATE_SECONDS = 1.0  # the second scrape after a start (then every --metric-resolution)
# A node that joined has no usage until two scrapes saw it: it is scraped again FIRST_RATE_SECONDS
# after the first, for this long at most (a node that never answers leaves the normal pace).
NEW_NODE_SECONDS = 60.0


def duration(text: str) -> float:
    m = DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15s, 500ms, 1m)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def parser() -> Parser:
    p = Parser(prog="metrics-server", description="Resource metrics API (metrics.k8s.io) from kubelets.")
    a = p.add_argument
    a("--kubeconfig", help="kubeconfig of this server's identity (default: in-cluster)")
    a("--secure-port", type=int, default=10250)
    a("--bind-address", default="0.0.0.0")
    a("--tls-cert-file")
    a("--tls-private-key-file")
    a("--cert-dir", help="where a self-signed serving certificate is made when none is given")
    a("--metric-resolution", type=duration, default=15.0, help="how often kubelets are scraped (default 15s)")
    a("--kubelet-insecure-tls", action="store_true", help="do not check kubelets' serving certificates")
    a("--kubelet-certificate-authority", help="CA of kubelets' serving certificates (default: the cluster CA)")
    a("--kubelet-preferred-address-types", default=",".join(DEFAULT_ADDRESS_TYPES))
    a("--kubelet-use-node-status-port", action="store_true", default=True)
    a("--kubelet-port", type=int, default=10250)
    a("--requestheader-client-ca-file")
    a("--requestheader-allowed-names", default="")
    a("--requestheader-username-headers", default="X-Remote-User")
    a("--requestheader-group-headers", default="X-Remote-Group")
    a("--requestheader-extra-headers-prefix", default="X-Remote-Extra-")
    a("--client-ca-file")
    a("--authentication-kubeconfig", help="accepted for compatibility; --kubeconfig is used")
    a("--authorization-kubeconfig", help="accepted for compatibility; --kubeconfig is used")
    a("--v", "-v", type=int, default=0, dest="verbosity")
    return p


def in_cluster_kubeconfig(directory: str) -> str:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not os.path.exists(f"{SA_DIR}/token"):
        raise UsageError("--kubeconfig is required outside a pod (no service-account token)")
    path = os.path.join(directory, "kubeconfig")
    with open(path, "w") as fh:
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                        "clusters": [{"name": "c", "cluster": {"server": f"https://{host}:{port}",
                                                               "certificate-authority": f"{SA_DIR}/ca.crt"}}],
                        "users": [{"name": "u", "user": {"tokenFile": f"{SA_DIR}/token"}}],
                        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}, fh)
    return path


def _read(path: str | None) -> bytes:
    if not path:
        return b""
    with open(path, "rb") as fh:
        return fh.read()


async def auth_config(args: argparse.Namespace, api: Client) -> AuthConfig:
    if args.requestheader_client_ca_file or args.client_ca_file:
        split = lambda v: [s.strip() for s in v.split(",") if s.strip()]  # noqa: E731
        return AuthConfig(_read(args.requestheader_client_ca_file), _read(args.client_ca_file),
                          split(args.requestheader_allowed_names), split(args.requestheader_username_headers),
                          split(args.requestheader_group_headers), split(args.requestheader_extra_headers_prefix))
    while True:  # the API server publishes it shortly after it starts
        try:
            cm = await api.get("", "v1", "configmaps", "extension-apiserver-authentication", "kube-system")
            return AuthConfig.from_configmap(cm.get("data") or {})
        except (ApiStatusError, OSError) as exc:
            log.warning("waiting for kube-system/extension-apiserver-authentication: %s", exc)
            await asyncio.sleep(2)


def kubelet_ssl(args: argparse.Namespace, config: kubeconfig.KubeConfig, kubeconfig_path: str) -> ssl.SSLContext:
    """The kubeconfig's client identity towards kubelets, and how their certificates are checked."""
    ctx = kubeconfig.load(kubeconfig_path).ssl_context  # carries the client certificate, if any
    if args.kubelet_insecure_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif args.kubelet_certificate_authority:
        ctx.load_verify_locations(args.kubelet_certificate_authority)
    return ctx


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="metrics-server-") as tmp:
        path = args.kubeconfig or in_cluster_kubeconfig(tmp)
        try:
            config = kubeconfig.load(path)
        except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
            raise UsageError(f"--kubeconfig {path}: {exc}") from None
        if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
            raise UsageError("--tls-cert-file and --tls-private-key-file go together")
        cert, key = (args.tls_cert_file, args.tls_private_key_file) if args.tls_cert_file else \
            self_signed(args.cert_dir or os.path.join(tmp, "certs"), "metrics-server")
        api = Client(config, user_agent="metrics-server")
        options = KubeletOptions(tuple(t.strip() for t in args.kubelet_preferred_address_types.split(",") if t.strip()),
                                 args.kubelet_use_node_status_port, args.kubelet_port, args.kubelet_insecure_tls,
                                 timeout=max(min(args.metric_resolution * 0.9, 10.0), 1.0))
        scraper = Scraper(kubelet_ssl(args, config, path), config.token, options)
        informers = InformerFactory(api)
        nodes = informers.informer("", "v1", "nodes")
        pods = informers.informer("", "v1", "pods")
        informers.start()
        store = Store()
        rounds = [0]
        authn = Authenticator(await auth_config(args, api), api)
        server = MetricsApi(store, nodes.store, pods.store, authn, Authorizer(api),
                            ready=lambda: informers.has_synced() and rounds[0] > 0)
        runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, args.bind_address, args.secure_port,
                           ssl_context=server_ssl(cert, key, authn.config))
        await site.start()
        log.info("serving metrics.k8s.io on https://%s:%d", args.bind_address, args.secure_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        scraping = loop.create_task(scrape_forever(scraper, nodes, informers, store, rounds, args.metric_resolution))
        await stop.wait()
        scraping.cancel()
        await runner.cleanup()
        await informers.stop()
        await scraper.close()
        await api.close()


async def pause(seconds: float, wake: asyncio.Event) -> None:
    """Until `seconds` pass or `wake` is set (a node joined)."""
    try:
        await asyncio.wait_for(wake.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    wake.clear()


async def scrape_forever(scraper: Scraper, nodes, informers: InformerFactory, store: Store, rounds: list[int],
                         resolution: float) -> None:
    await informers.wait_for_sync()
    loop = asyncio.get_running_loop()
    joined = asyncio.Event()
    nodes.add_handler(on_add=lambda node: joined.set())
    first_seen: dict[str, float] = {}
    while True:
        started = loop.time()
        listed = nodes.store.list()
        store.store(await scraper.scrape(listed))
        rounds[0] += 1
        # A usage is the rate between two scrapes: the second comes soon after the first (after
        # a start, and for a node that joined), so `kubectl top` answers seconds later rather
        # than a whole resolution or two.
        now = loop.time()
        waiting = [name for name in (node["metadata"]["name"] for node in listed)
                   if store.node_usage(name) is None
                   and now - first_seen.setdefault(name, now) < NEW_NODE_SECONDS]
        period = min(resolution, FIRST_RATE_SECONDS) if rounds[0] == 1 or waiting else resolution
        await pause(max(period - (loop.time() - started), 0.1), joined)


def main(argv: list[str] | None = None) -> int:
    return serve("metrics-server", lambda: parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
