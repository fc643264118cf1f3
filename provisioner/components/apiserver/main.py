"""`provisioner-apiserver`: the API server process, with kube-apiserver's flag names.

Runs as the kube-apiserver static pod on control-plane hosts and under `provisioner dev
apiserver`. Serves HTTPS only; client certificates are checked against --client-ca-file.
"""

from __future__ import annotations

import os

# grpc reads its experiments once, when it is imported (by storage.py, below). Its iomgr TCP
# client answers each etcd call with fewer thread handoffs than the EventEngine client: a create
# was 0.04-0.05 ms faster on a 2-core host, measured as two API servers differing only in this,
# taking creates in turn. An operator's own GRPC_EXPERIMENTS wins.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402

import uvloop  # noqa: E402
from aiohttp import web  # noqa: E402

from . import admission, authz, encryption  # noqa: E402
from .aggregator import RequestHeaderNames  # noqa: E402
from .audit import add_flags as add_audit_flags  # noqa: E402
from .audit import options as audit_options  # noqa: E402
from .nodeproxy import DEFAULT_ADDRESS_TYPES  # noqa: E402
from .server import ApiServer, Config  # noqa: E402
from .storage import Storage, TLSClient, Transformer, parse_etcd_url  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="provisioner-apiserver",
                                description="Kubernetes-compatible API server on etcd")
    a = p.add_argument
    a("--etcd-servers", default="http://127.0.0.1:2379", help="comma-separated etcd URLs")
    a("--etcd-cafile")
    a("--etcd-certfile")
    a("--etcd-keyfile")
    a("--etcd-prefix", default="/registry")
    a("--tls-cert-file", required=True)
    a("--tls-private-key-file", required=True)
    a("--client-ca-file")
    a("--service-account-key-file", action="append", default=[])
    a("--service-account-signing-key-file")
    a("--service-account-issuer", action="append", default=[])
    a("--api-audiences", action="append", default=[],
      help="audiences a service-account token must name to be accepted here (comma-separated); "
           "default: the first --service-account-issuer")
    a("--service-cluster-ip-range", default="10.96.0.0/12")
    a("--secure-port", type=int, default=6443)
    a("--bind-address", default="0.0.0.0")
    a("--advertise-address", default="127.0.0.1")
    a("--encryption-provider-config")
    add_audit_flags(p)
    a("--watch-cache", nargs="?", const="true", default="true", choices=("true", "false"),
      help="serve lists from a watch-fed cache (kube-apiserver's default); false: every read from etcd")
    a("--kubelet-client-certificate", help="client certificate the API server shows kubelets (logs, exec, proxy)")
    a("--kubelet-client-key")
    a("--kubelet-certificate-authority", help="CA that signed kubelets' serving certificates; without it "
      "they are not checked, as with kube-apiserver")
    a("--kubelet-preferred-address-types", default=",".join(DEFAULT_ADDRESS_TYPES),
      help="node address types to reach kubelets by, in order of preference")
    a("--v", "-v", type=int, default=0, dest="verbosity")
    # accepted for command-line compatibility with kube-apiserver manifests; no effect here
    a("--authorization-mode", default="Node,RBAC",
      help="comma-separated authorizers in order: Node, RBAC, AlwaysAllow, AlwaysDeny")
    a("--enable-admission-plugins", help="admission plugins to turn on besides the defaults (comma-separated)")
    a("--disable-admission-plugins", help="default admission plugins to turn off (comma-separated)")
    a("--proxy-client-cert-file", help="client certificate shown to aggregated API servers (front proxy)")
    a("--proxy-client-key-file")
    a("--requestheader-username-headers", default="X-Remote-User",
      help="headers naming the user to aggregated API servers (comma-separated; the first is sent)")
    a("--requestheader-group-headers", default="X-Remote-Group")
    a("--requestheader-extra-headers-prefix", default="X-Remote-Extra-")
    a("--requestheader-client-ca-file", help="CA of the front-proxy client certificate (published for "
      "aggregated API servers in kube-system/extension-apiserver-authentication)")
    a("--requestheader-allowed-names", default="", help="common names a front-proxy client may have")
    for flag in ("--allow-privileged", "--enable-bootstrap-token-auth", "--enable-aggregator-routing"):
        a(flag)
    return p


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    if args.client_ca_file:
        ctx.load_verify_locations(args.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # anonymous and token requests come without a cert
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def build(args: argparse.Namespace) -> tuple[ApiServer, web.Application]:
    host, port = parse_etcd_url(args.etcd_servers.split(",")[0])
    client = TLSClient(host, port, args.etcd_cafile, args.etcd_certfile, args.etcd_keyfile,
                       options={"grpc.max_receive_message_length": 64 * 1024 * 1024})
    transformer: Transformer = (encryption.load(args.encryption_provider_config)
                                if args.encryption_provider_config else Transformer())
    storage = Storage(client, transformer, args.etcd_prefix.rstrip("/"))
    sa_keys = list(args.service_account_key_file)
    if not sa_keys and args.service_account_signing_key_file:
        sa_keys = [args.service_account_signing_key_file]
    config = Config(service_cidr=args.service_cluster_ip_range, sa_key_files=sa_keys,
                    sa_signing_key_file=args.service_account_signing_key_file,
                    sa_issuers=args.service_account_issuer or
                    ["https://kubernetes.default.svc.cluster.local"],
                    api_audiences=[a for v in args.api_audiences for a in v.split(",") if a],
                    advertise_address=args.advertise_address, secure_port=args.secure_port,
                    authorization_modes=authz.parse_modes(args.authorization_mode),
                    admission_plugins=admission.plugin_names(args.enable_admission_plugins,
                                                             args.disable_admission_plugins))
    config.kubelet_client_certificate = args.kubelet_client_certificate
    config.kubelet_client_key = args.kubelet_client_key
    config.kubelet_certificate_authority = args.kubelet_certificate_authority
    config.kubelet_preferred_address_types = tuple(
        t.strip() for t in args.kubelet_preferred_address_types.split(",") if t.strip())
    config.proxy_client_cert = args.proxy_client_cert_file
    config.proxy_client_key = args.proxy_client_key_file
    config.client_ca_file = args.client_ca_file
    config.requestheader_client_ca_file = args.requestheader_client_ca_file
    config.requestheader_allowed_names = [n.strip() for n in args.requestheader_allowed_names.split(",") if n.strip()]
    config.requestheader = RequestHeaderNames(*(
        tuple(h.strip() for h in v.split(",") if h.strip()) for v in (
            args.requestheader_username_headers, args.requestheader_group_headers,
            args.requestheader_extra_headers_prefix)))
    config.audit = audit_options(args)
    config.watch_cache = args.watch_cache == "true"
    server = ApiServer(storage, config)
    return server, server.app()


async def serve(args: argparse.Namespace) -> None:
    server, app = build(args)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, args.bind_address, args.secure_port, ssl_context=ssl_context(args))
    await site.start()
    logging.getLogger("apiserver").info("serving on https://%s:%d", args.bind_address, args.secure_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await server.storage.client.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        # uvloop's TLS and socket paths: on a 2-core host a third more creates per second and
        # watch delivery p99 12 -> 7 ms (benchmarks/bench_apiserver.py)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args))
    except (OSError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
