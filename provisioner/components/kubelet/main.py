"""`kubelet`: the node agent process, with kubelet's flag names.

Runs under systemd on every host. With --kubeconfig (or --bootstrap-kubeconfig) it registers its
Node and runs the pods bound to it; without, it runs only the static pods of staticPodPath
(standalone mode: how a control-plane host starts its API server). Bad flags or config print one
line naming the flag or field and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from ..api import kubeconfig as kubeconfig_loader
from ..api.client import Client
from . import config as kconfig
from . import hostinfo
from .kubelet import Kubelet
from .node import NodeAgent, NodeSettings
from .runtimeview import Runtime

log = logging.getLogger("kubelet")
# Threads for blocking calls: each runtime call holds one while the daemon works (a sandbox takes
# most of a second on a busy node), so the default pool (CPUs + 4) made starting pods queue for
# a thread, cgroup and volume work included.
BLOCKING_THREADS = 64


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelet", description="the node agent")
    a = p.add_argument
    a("--kubeconfig", default="", help="kubeconfig to reach the API server; none: standalone")
    a("--bootstrap-kubeconfig", default="",
      help="kubeconfig with a bootstrap token, used to get a client certificate when "
           "--kubeconfig does not exist yet")
    a("--config", default="", help="a KubeletConfiguration (kubelet.config.k8s.io/v1beta1) file")
    a("--node-ip", default="", help="the node's address (default: the default route's source)")
    a("--hostname-override", default="", help="the node name (default: the host name)")
    a("--container-runtime-endpoint", default="",
      help="the runtime daemon's socket (unix:///run/provisioner-runtime/runtime.sock)")
    a("--node-labels", default="", help="labels to add on registration: k=v,k2=v2")
    a("--root-dir", default="/var/lib/kubelet", help="where pod volumes and files live")
    a("--cert-dir", default="", help="where TLS bootstrap keeps its certificates "
                                     "(default: <root-dir>/pki)")
    a("--register-node", default="true", choices=("true", "false"))
    a("--v", "-v", type=int, default=0, dest="verbosity")
    return p


def settings_from(args: argparse.Namespace, cfg: dict) -> tuple[str, str, dict]:
    name = (args.hostname_override or hostinfo.hostname()).lower()
    ip = args.node_ip or hostinfo.default_ip()
    labels = kconfig.parse_labels(args.node_labels)
    return name, ip, labels


async def run(args: argparse.Namespace, cfg: dict) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="kubelet"))
    name, ip, labels = settings_from(args, cfg)
    os.makedirs(args.root_dir, mode=0o750, exist_ok=True)
    runtime = Runtime(args.container_runtime_endpoint or cfg.get("containerRuntimeEndpoint"),
                      name)
    client = node = None
    kubeconfig_path = args.kubeconfig
    if kubeconfig_path and not os.path.exists(kubeconfig_path) and args.bootstrap_kubeconfig:
        from .bootstrap import bootstrap_client_certificate
        await bootstrap_client_certificate(args.bootstrap_kubeconfig, kubeconfig_path, name,
                                           args.cert_dir or os.path.join(args.root_dir, "pki"))
    if kubeconfig_path:
        try:
            client = Client(kubeconfig_loader.load(kubeconfig_path), user_agent="kubelet")
        except (OSError, ValueError, KeyError) as error:
            raise kconfig.ConfigError(f"--kubeconfig {kubeconfig_path}: {error}") from None
        node = NodeAgent(client, NodeSettings(
            name=name, ip=ip, root_dir=args.root_dir, port=int(cfg["port"]), labels=labels,
            taints=cfg.get("registerWithTaints") or [], max_pods=int(cfg["maxPods"]),
            eviction_hard=cfg.get("evictionHard") or {},
            report_seconds=kconfig.seconds(cfg["nodeStatusReportFrequency"]),
            update_seconds=kconfig.seconds(cfg["nodeStatusUpdateFrequency"])), runtime.client)
    kubelet = Kubelet(node_name=name, node_ip=ip, root_dir=args.root_dir, runtime=runtime,
                      config=cfg, client=client, node=node)
    await kubelet.cgroups.setup(os.cpu_count() or 1)
    loops = [kubelet.relist_loop(), kubelet.static_loop()]
    if client is not None:
        loops += [kubelet.api_loop(), kubelet.mirror_loop(), node.lease_loop(),
                  node.status_loop()]
    if cfg.get("evictionHard"):
        from .eviction import eviction_loop
        loops.append(eviction_loop(kubelet, cfg["evictionHard"]))
    cert_dir = args.cert_dir or os.path.join(args.root_dir, "pki")
    if client is not None and cfg.get("rotateCertificates"):
        from .bootstrap import rotation_loop
        loops.append(rotation_loop(client, name, cert_dir, client.config.ssl_context))
    server = None
    if cfg.get("enableServer", True):
        from .server import KubeletServer
        server_cfg = cfg
        if cfg.get("serverTLSBootstrap") and client is None:
            log.warning("serverTLSBootstrap needs --kubeconfig (no API server to sign a "
                        "certificate): serving with the self-signed certificate")
        if cfg.get("serverTLSBootstrap") and client is not None:
            from .servingcert import current_pair, serving_loop
            stored = current_pair(cert_dir, name, [ip])   # else self-signed until signed
            if stored:
                server_cfg = {**cfg, "tlsCertFile": stored, "tlsPrivateKeyFile": stored}
        server = KubeletServer(kubelet, server_cfg, args)
        await server.start()
        if cfg.get("serverTLSBootstrap") and client is not None:
            loops.append(serving_loop(client, name, name, [ip], cert_dir, server.tls))
    log.info("kubelet for node %s (%s) started; %s", name, ip,
             "standalone: static pods only" if client is None else "API mode")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(coro) for coro in loops]
    stopper = asyncio.create_task(stop.wait())
    pending = {stopper, *tasks}
    done: set[asyncio.Task] = set()
    # A loop with nothing to do ends quietly (no certificate to rotate); the kubelet stops on a
    # signal or when a loop fails.
    while stopper not in done and not any(t.exception() for t in done if t is not stopper):
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        done |= finished
    for task in [*tasks, stopper, *(w.task for w in kubelet.workers.values() if w.task)]:
        task.cancel()
    for task in done:
        if task is not stopper and task.exception():
            raise task.exception()
    if server is not None:
        await server.stop()
    if client is not None:
        await client.close()
    log.info("kubelet stopped; containers keep running and are adopted on the next start")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbosity >= 4 else
                        logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        cfg = kconfig.load(args.config)
        if args.kubeconfig and not os.path.exists(args.kubeconfig) and \
                not args.bootstrap_kubeconfig:
            raise kconfig.ConfigError(f"--kubeconfig {args.kubeconfig} does not exist (give "
                                      "--bootstrap-kubeconfig to obtain it)")
        asyncio.run(run(args, cfg))
    except kconfig.ConfigError as error:
        print(f"kubelet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
