"""kube-controller-manager's command line: parsing, checking, and which controllers run.

Flags carry kube-controller-manager's names and defaults so kubeadm's static pod manifest works
unchanged. Every problem is collected and reported at once (FlagError), naming the flag and the
fix; main.py prints it and exits 1 without a traceback.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from dataclasses import dataclass, field


class FlagError(Exception):
    """One or more bad flags; str() is the message for the operator."""


# kube-controller-manager's duration syntax: 50s, 5m0s, 1h30m, 300ms
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|ns))+$")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("50s", "1m30s"); ValueError if it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not _DURATION.match(text):
        raise ValueError(text)
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)", text))


@dataclass
class Options:
    kubeconfig: str = ""
    controllers: set[str] = field(default_factory=set)
    cluster_signing_cert_file: str = ""
    cluster_signing_key_file: str = ""
    allocate_node_cidrs: bool = False
    cluster_cidr: str = ""
    node_cidr_mask_size: int = 24
    service_account_private_key_file: str = ""
    root_ca_file: str = ""
    use_service_account_credentials: bool = False
    leader_elect: bool = True
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    secure_port: int = 10257
    bind_address: str = "0.0.0.0"
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    authentication_kubeconfig: str = ""  # TokenReviews for the secure port ("": bearer tokens refused)
    authorization_kubeconfig: str = ""  # SubjectAccessReviews for the secure port ("": only always-allowed)
    authorization_always_allow_paths: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    node_monitor_grace_period: float = 50.0
    node_monitor_period: float = 5.0
    concurrent_syncs: int = 5
    verbose: int = 0


def select_controllers(spec: str, known: dict[str, bool], canonical: dict[str, str] | None = None) -> set[str]:
    """The set kube-controller-manager runs for --controllers: `*` is every controller on by
    default, `foo` adds one, `-foo` removes one. `known` maps name -> on by default; `canonical`
    maps an alias to its canonical name (the result holds canonical names).
    Unknown names raise ValueError listing them."""
    canon = canonical or {}
    items = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = sorted({i.lstrip("-") for i in items if i != "*" and i.lstrip("-") not in known})
    if unknown:
        raise ValueError(", ".join(unknown))
    chosen = {canon.get(n, n) for n, on in known.items() if on} if "*" in items else set()
    for item in items:
        if item.startswith("-"):
            chosen.discard(canon.get(item[1:], item[1:]))
        elif item != "*":
            chosen.add(canon.get(item, item))
    return chosen


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "1", "t", "yes"):
        return True
    if low in ("false", "0", "f", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (use true or false)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit 2
        raise FlagError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kube-controller-manager", description="Runs the cluster's controllers.")
    a = p.add_argument
    a("--kubeconfig", default="", help="kubeconfig with the API server and this component's identity")
    a("--controllers", default="*", help="controllers to run: '*', 'foo', '-foo' (comma separated)")
    a("--cluster-signing-cert-file", default="")
    a("--cluster-signing-key-file", default="")
    a("--allocate-node-cidrs", type=_bool, nargs="?", const=True, default=False)
    a("--cluster-cidr", default="")
    a("--node-cidr-mask-size", type=int, default=None)
    a("--service-account-private-key-file", default="")
    a("--root-ca-file", default="")
    a("--use-service-account-credentials", type=_bool, nargs="?", const=True, default=False)
    a("--leader-elect", type=_bool, nargs="?", const=True, default=True)
    a("--leader-elect-lease-duration", default="15s")
    a("--leader-elect-renew-deadline", default="10s")
    a("--leader-elect-retry-period", default="2s")
    a("--secure-port", type=int, default=10257)
    a("--bind-address", default="0.0.0.0")
    a("--tls-cert-file", default="")
    a("--tls-private-key-file", default="")
    a("--client-ca-file", default="", help="CA for client certificates on /metrics (default: the kubeconfig's CA)")
    a("--authentication-kubeconfig", default="", help="kubeconfig for TokenReviews of bearer tokens on the secure port")
    a("--authorization-kubeconfig", default="", help="kubeconfig for SubjectAccessReviews on the secure port")
    a("--authorization-always-allow-paths", default="/healthz,/readyz,/livez",
      help="paths anyone may read on the secure port (comma separated; /x/* for a subtree)")
    a("--node-monitor-grace-period", default="50s")
    a("--node-monitor-period", default="5s")
    a("--concurrent-deployment-syncs", "--concurrent-replicaset-syncs", dest="concurrent", type=int,
      default=5)
    # accepted for kubeadm's manifest compatibility; they change nothing here
    for ignored in ("--requestheader-client-ca-file", "--cluster-name",
                    "--service-cluster-ip-range", "--profiling", "--feature-gates"):
        a(ignored, default="", help=argparse.SUPPRESS)
    a("-v", "--v", dest="verbose", type=int, default=0)
    return p


def parse(argv: list[str], known: dict[str, bool], canonical: dict[str, str] | None = None) -> Options:
    """Options from argv, or FlagError naming every bad flag at once."""
    ns = build_parser().parse_args(argv)
    problems: list[str] = []
    o = Options(kubeconfig=ns.kubeconfig, cluster_signing_cert_file=ns.cluster_signing_cert_file,
                cluster_signing_key_file=ns.cluster_signing_key_file,
                allocate_node_cidrs=ns.allocate_node_cidrs, cluster_cidr=ns.cluster_cidr,
                service_account_private_key_file=ns.service_account_private_key_file,
                root_ca_file=ns.root_ca_file,
                use_service_account_credentials=ns.use_service_account_credentials,
                leader_elect=ns.leader_elect, secure_port=ns.secure_port,
                bind_address=ns.bind_address, tls_cert_file=ns.tls_cert_file,
                tls_private_key_file=ns.tls_private_key_file, client_ca_file=ns.client_ca_file,
                authentication_kubeconfig=ns.authentication_kubeconfig,
                authorization_kubeconfig=ns.authorization_kubeconfig,
                authorization_always_allow_paths=tuple(p.strip() for p in ns.authorization_always_allow_paths
                                                       .split(",") if p.strip()),
                concurrent_syncs=ns.concurrent,
                verbose=ns.verbose)
    try:
        o.controllers = select_controllers(ns.controllers, known, canonical)
    except ValueError as e:
        problems.append(f"--controllers: unknown controller(s) {e} (known: {', '.join(sorted(known))})")
    for flag, attr in (("--node-monitor-grace-period", "node_monitor_grace_period"),
                       ("--node-monitor-period", "node_monitor_period"),
                       ("--leader-elect-lease-duration", "leader_elect_lease_duration"),
                       ("--leader-elect-renew-deadline", "leader_elect_renew_deadline"),
                       ("--leader-elect-retry-period", "leader_elect_retry_period")):
        raw = getattr(ns, attr)
        try:
            setattr(o, attr, parse_duration(raw))
        except ValueError:
            problems.append(f"{flag}: {raw!r} is not a duration (write it like 50s or 1m30s)")
    if not o.kubeconfig:
        problems.append("--kubeconfig: required (the API server and this component's identity)")
    elif not os.path.isfile(o.kubeconfig):
        problems.append(f"--kubeconfig: {o.kubeconfig} does not exist")
    for flag, path in (("--cluster-signing-cert-file", o.cluster_signing_cert_file),
                       ("--cluster-signing-key-file", o.cluster_signing_key_file),
                       ("--service-account-private-key-file", o.service_account_private_key_file),
                       ("--root-ca-file", o.root_ca_file), ("--tls-cert-file", o.tls_cert_file),
                       ("--client-ca-file", o.client_ca_file),
                       ("--authentication-kubeconfig", o.authentication_kubeconfig),
                       ("--authorization-kubeconfig", o.authorization_kubeconfig),
                       ("--tls-private-key-file", o.tls_private_key_file)):
        if path and not os.path.isfile(path):
            problems.append(f"{flag}: {path} does not exist")
    if bool(o.cluster_signing_cert_file) != bool(o.cluster_signing_key_file):
        problems.append("--cluster-signing-cert-file and --cluster-signing-key-file go together: "
                        "give both or neither")
    if bool(o.tls_cert_file) != bool(o.tls_private_key_file):
        problems.append("--tls-cert-file and --tls-private-key-file go together: give both or neither")
    if not 0 <= o.secure_port <= 65535:
        problems.append(f"--secure-port: {o.secure_port} is not a port (0-65535; 0 disables serving)")
    try:
        ipaddress.ip_address(o.bind_address)
    except ValueError:
        problems.append(f"--bind-address: {o.bind_address!r} is not an IP address")
    problems += _check_cidrs(o, ns.node_cidr_mask_size)
    if problems:
        raise FlagError("invalid flags:\n  " + "\n  ".join(problems))
    return o


def _check_cidrs(o: Options, mask: int | None) -> list[str]:
    problems: list[str] = []
    net = None
    if o.cluster_cidr:
        try:
            net = ipaddress.ip_network(o.cluster_cidr, strict=True)
        except ValueError:
            problems.append(f"--cluster-cidr: {o.cluster_cidr!r} is not a network (like 10.244.0.0/16)")
    if o.allocate_node_cidrs and not o.cluster_cidr:
        problems.append("--allocate-node-cidrs needs --cluster-cidr")
    default = 24 if net is None or net.version == 4 else 64
    o.node_cidr_mask_size = default if mask is None else mask
    if net is not None and not net.prefixlen <= o.node_cidr_mask_size <= net.max_prefixlen:
        problems.append(f"--node-cidr-mask-size: {o.node_cidr_mask_size} must be between the cluster "
                        f"CIDR's prefix ({net.prefixlen}) and {net.max_prefixlen}")
    return problems
