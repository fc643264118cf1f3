"""`kube-controller-manager`: the process kubeadm runs as a static pod.

Parse and check flags (every problem at once, exit 1, no traceback), serve /healthz, /livez,
/readyz and /metrics on --secure-port, then run the controllers, behind the
kube-system/kube-controller-manager Lease with --leader-elect (the default). An unreachable API
server or a lost lease makes it wait and resume; it never exits for either.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from provisioner.components.api.delegation import Delegation
from provisioner.components.api.events import EventRecorder
from provisioner.components.api.leaderelection import LeaderElector
from provisioner.components.api.server import ComponentServer

from . import manager
from .flags import FlagError, Options, parse
from .metrics import LEADER
from .rootca import kubeconfig_ca

log = logging.getLogger("kube-controller-manager")
LEASE_NAME = "kube-controller-manager"


async def serve(options: Options) -> None:
    config = kubeconfig.load(options.kubeconfig)
    client = Client(config, user_agent="kube-controller-manager")
    recorder = EventRecorder(client, "kube-controller-manager")
    mgr = manager.Manager(client, options, recorder)
    elector: LeaderElector | None = None
    if options.leader_elect:
        elector = LeaderElector(client, LEASE_NAME, lease_duration=options.leader_elect_lease_duration,
                                renew_deadline=options.leader_elect_renew_deadline,
                                retry_period=options.leader_elect_retry_period,
                                on_started_leading=mgr.run_controllers,
                                on_stopped_leading=lambda: LEADER.labels(LEASE_NAME).set(0),
                                on_new_leader=lambda who: (
                                    log.info("leader is now %s", who),
                                    LEADER.labels(LEASE_NAME).set(1 if who == elector.identity else 0)))
    server = None
    delegates: list[Client] = []
    if options.secure_port:
        if options.client_ca_file:
            with open(options.client_ca_file, "rb") as fh:
                client_ca = fh.read()
        else:
            client_ca = kubeconfig_ca(options.authentication_kubeconfig or options.kubeconfig).encode() or None
        delegation = Delegation(always_allow_paths=options.authorization_always_allow_paths)
        for attr, path in (("authn", options.authentication_kubeconfig), ("authz", options.authorization_kubeconfig)):
            if path:
                delegates.append(Client(kubeconfig.load(path), user_agent="kube-controller-manager"))
                setattr(delegation, attr, delegates[-1])
        server = ComponentServer("kube-controller-manager", options.bind_address, options.secure_port,
                                 options.tls_cert_file or None, options.tls_private_key_file or None,
                                 client_ca_pem=client_ca, delegation=delegation, readyz={"controllers": lambda: mgr.synced or (
                                     elector is not None and not elector.leading)})
        try:
            port = await server.start()
        except OSError as exc:
            for delegate in delegates:
                await delegate.close()
            await client.close()
            raise FlagError(f"--secure-port {options.secure_port} on {options.bind_address}: {exc.strerror or exc} "
                            "(choose a free port, or 0 to disable serving)") from None
        log.info("serving /healthz and /metrics on %s:%d", options.bind_address, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    work = asyncio.ensure_future(elector.run() if elector else mgr.run_controllers())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, stopper):
            task.cancel()
        await asyncio.gather(work, stopper, return_exceptions=True)
        await recorder.close()
        if server is not None:
            await server.stop()
        for delegate in delegates:
            await delegate.close()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = parse(argv, manager.known(), manager.aliases())
    except FlagError as exc:
        print(f"kube-controller-manager: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.DEBUG if options.verbose >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    for flag, path in (("--kubeconfig", options.kubeconfig),
                       ("--authentication-kubeconfig", options.authentication_kubeconfig),
                       ("--authorization-kubeconfig", options.authorization_kubeconfig)):
        try:
            if path:
                kubeconfig.load(path)
        except (OSError, ValueError, KeyError) as exc:
            print(f"kube-controller-manager: {flag} {path}: {exc}", file=sys.stderr)
            return 1
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        pass
    except FlagError as exc:
        print(f"kube-controller-manager: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
