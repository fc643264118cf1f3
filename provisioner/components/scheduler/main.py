"""`kube-scheduler`: flags as Kubernetes names them, then the scheduler under leader election.

    kube-scheduler --kubeconfig=/etc/kubernetes/scheduler.conf --leader-elect=true \
        [--config=sched.yaml] [--secure-port=10259] [--bind-address=0.0.0.0]

Informers start at once (a standby keeps a warm cache); only the Lease holder (kube-system/
kube-scheduler) schedules. Losing the lease stops scheduling and in-flight bindings, then the process
campaigns again and resumes when it wins: it never exits for that (kube-scheduler exits and lets the
kubelet restart it; waiting gives the same single-actor guarantee without a crash loop). SIGTERM
releases the lease and exits 0. Bad flags, a bad --config or an unreadable kubeconfig exit 1 with
one line naming the culprit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from provisioner.components.api.delegation import Delegation
from provisioner.components.api.informer import InformerFactory
from provisioner.components.api.leaderelection import LeaderElector
from provisioner.components.api.server import ComponentServer

from . import config, metrics
from .scheduler import Scheduler

log = logging.getLogger("kube-scheduler")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line naming the flag, not a usage dump
        raise UsageError(message.replace("unrecognized arguments", "unknown flag(s)"))


def duration(value: str) -> float:
    try:
        return config.duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def boolean(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")


def parser() -> Parser:
    p = Parser(prog="kube-scheduler", description="Assigns pending pods to nodes.")
    p.add_argument("--kubeconfig", help="kubeconfig with the scheduler's identity")
    p.add_argument("--config", help="KubeSchedulerConfiguration file")
    p.add_argument("--leader-elect", type=boolean, nargs="?", const=True, default=None)
    # leader election: a flag wins over the --config file, which wins over kube-scheduler's defaults
    p.add_argument("--leader-elect-lease-duration", dest="leaseDuration", type=duration)
    p.add_argument("--leader-elect-renew-deadline", dest="renewDeadline", type=duration)
    p.add_argument("--leader-elect-retry-period", dest="retryPeriod", type=duration)
    p.add_argument("--leader-elect-resource-name", dest="resourceName")
    p.add_argument("--leader-elect-resource-namespace", dest="resourceNamespace")
    p.add_argument("--secure-port", type=int, default=10259, help="HTTPS port for health and metrics; 0: none")
    p.add_argument("--bind-address", default="0.0.0.0")
    p.add_argument("--tls-cert-file")
    p.add_argument("--tls-private-key-file")
    p.add_argument("--cert-dir")
    p.add_argument("--client-ca-file")
    p.add_argument("--authentication-kubeconfig")
    p.add_argument("--authorization-kubeconfig")
    p.add_argument("--authorization-always-allow-paths", default="/healthz,/readyz,/livez")
    p.add_argument("--profiling", type=boolean, nargs="?", const=True, default=False)
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    return p


def settings(argv: list[str]) -> tuple[argparse.Namespace, config.SchedulerConfig]:
    args = parser().parse_args(argv)
    cfg = config.load(args.config) if args.config else config.SchedulerConfig()
    args.kubeconfig = args.kubeconfig or cfg.kubeconfig
    if not args.kubeconfig:
        raise UsageError("--kubeconfig (or clientConnection.kubeconfig in --config) is required")
    if args.leader_elect is None:
        args.leader_elect = cfg.leader_elect if cfg.leader_elect is not None else True
    args.leader_election = {key: next(v for v in (getattr(args, key), cfg.leader_election.get(key), default)
                                      if v is not None)
                            for key, default in config.LEADER_DEFAULTS.items()}
    le = args.leader_election
    if le["renewDeadline"] >= le["leaseDuration"] or le["retryPeriod"] >= le["renewDeadline"]:
        raise UsageError("leader election: retry period < renew deadline < lease duration is required "
                         f"(got {le['retryPeriod']}s, {le['renewDeadline']}s, {le['leaseDuration']}s)")
    if (args.tls_cert_file is None) != (args.tls_private_key_file is None):
        raise UsageError("--tls-cert-file and --tls-private-key-file go together")
    if not 0 <= args.secure_port <= 65535:
        raise UsageError(f"--secure-port {args.secure_port}: must be between 0 and 65535")
    return args, cfg


def _read(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror}") from None


def _kubeconfig(path: str, flag: str) -> kubeconfig.KubeConfig:
    try:
        return kubeconfig.load(path)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror}") from None
    except Exception as exc:
        raise UsageError(f"{flag} {path}: {exc}") from None


async def serve(args: argparse.Namespace, cfg: config.SchedulerConfig) -> None:
    kc = _kubeconfig(args.kubeconfig, "--kubeconfig")
    client_ca = _read(args.client_ca_file, "--client-ca-file") if args.client_ca_file else None
    if client_ca is None and args.authentication_kubeconfig:
        client_ca = _kubeconfig(args.authentication_kubeconfig, "--authentication-kubeconfig").ca_pem
    delegation = Delegation(always_allow_paths=tuple(p.strip() for p in args.authorization_always_allow_paths
                                                     .split(",") if p.strip()))
    delegates = {attr: Client(_kubeconfig(path, flag), user_agent="kube-scheduler")
                 for attr, path, flag in (("authn", args.authentication_kubeconfig, "--authentication-kubeconfig"),
                                          ("authz", args.authorization_kubeconfig, "--authorization-kubeconfig"))
                 if path}
    for attr, delegate in delegates.items():
        setattr(delegation, attr, delegate)
    client = Client(kc, user_agent="kube-scheduler")
    factory = InformerFactory(client)
    sched = Scheduler(client, cfg)
    sched.register(factory)
    server = ComponentServer("kube-scheduler", args.bind_address, args.secure_port, args.tls_cert_file,
                             args.tls_private_key_file, args.cert_dir, client_ca,
                             readyz={"informer-sync": factory.has_synced}, delegation=delegation)
    if args.secure_port:  # 0 turns the secure port off, as in kube-scheduler
        try:
            port = await server.start()
        except OSError as exc:
            raise UsageError(f"--secure-port {args.secure_port} on {args.bind_address}: {exc.strerror}") from None
        log.info("serving /healthz, /readyz and /metrics on https://%s:%d", args.bind_address, port)
    factory.start()

    async def report_queue() -> None:
        while True:
            for name, n in sched.queue.counts().items():
                metrics.pending.labels(name).set(n)
            await asyncio.sleep(1)

    async def lead() -> None:
        metrics.leader.labels("kube-scheduler").set(1)
        try:
            await factory.wait_for_sync()
            log.info("caches synced; scheduling")
            await sched.run()
        finally:
            metrics.leader.labels("kube-scheduler").set(0)
            await sched.stop_work()

    reporter = asyncio.ensure_future(report_queue())
    try:
        if args.leader_elect:
            le = args.leader_election
            elector = LeaderElector(client, le["resourceName"], le["resourceNamespace"],
                                    lease_duration=le["leaseDuration"], renew_deadline=le["renewDeadline"],
                                    retry_period=le["retryPeriod"], on_started_leading=lead,
                                    on_new_leader=lambda who: log.info("lease held by %s", who))
            server.livez["leaderElection"] = elector.healthy
            await elector.run()
        else:
            await lead()
    finally:
        reporter.cancel()
        await factory.stop()
        await sched.close()
        await server.stop()
        for delegate in delegates.values():
            await delegate.close()
        await client.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    verbose = any(a in ("-v", "--v") or a.startswith(("--v=", "-v=")) for a in argv)
    try:
        args, cfg = settings(argv)
    except (UsageError, config.ConfigError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)
    logging.basicConfig(level=logging.DEBUG if args.v >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve(args, cfg)
        except asyncio.CancelledError:
            log.info("terminating")

    try:
        asyncio.run(run())
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if verbose:
            raise
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
