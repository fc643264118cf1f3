"""proxy/rules: service ports -> the iptables rules of kube-proxy's iptables mode, as text for
iptables-restore. Pure: no I/O, so the proxier, the tests and the benchmark share it.

Chain layout (as kube-proxy's ``pkg/proxy/iptables``): nat KUBE-SERVICES (from PREROUTING and
OUTPUT) jumps per ClusterIP to KUBE-SVC-<hash> (or KUBE-SVL-<hash>, local endpoints only, for
internalTrafficPolicy Local) and last to KUBE-NODEPORTS for local destinations; KUBE-NODEPORTS jumps
per nodePort to KUBE-EXT-<hash>; SVC/SVL chains pick a KUBE-SEP-<hash> per endpoint with
``statistic --mode random --probability 1/(n-i)`` (``recent`` first for ClientIP affinity); a SEP
chain marks hairpin traffic for masquerade and DNATs. KUBE-MARK-MASQ sets the mark 0x4000 that
KUBE-POSTROUTING turns into MASQUERADE. filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES REJECT
traffic to ports without endpoints (DROP when only a Local policy leaves none); KUBE-FORWARD accepts
marked and established traffic. Hashes: base32(sha256(port name + protocol [+ endpoint]))[:16].
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from .model import Endpoint, ServicePort

MASQ_MARK = "0x4000"
NAT_TOP = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_TOP = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
              "KUBE-PROXY-FIREWALL")
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-")
CANARY = "KUBE-PROXY-CANARY"

# Jumps from the built-in chains (kept with iptables -C/-I, never rewritten by restore).
BUILTIN_JUMPS = [
    ("nat", "PREROUTING", ["-m", "comment", "--comment", "kubernetes service portals",
                           "-j", "KUBE-SERVICES"]),
    ("nat", "OUTPUT", ["-m", "comment", "--comment", "kubernetes service portals",
                       "-j", "KUBE-SERVICES"]),
    ("nat", "POSTROUTING", ["-m", "comment", "--comment", "kubernetes postrouting rules",
                            "-j", "KUBE-POSTROUTING"]),
    ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes externally-visible service portals",
                         "-j", "KUBE-EXTERNAL-SERVICES"]),
    ("filter", "FORWARD", ["-m", "comment", "--comment", "kubernetes forwarding rules",
                           "-j", "KUBE-FORWARD"]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes service portals", "-j", "KUBE-SERVICES"]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes externally-visible service portals",
                           "-j", "KUBE-EXTERNAL-SERVICES"]),
    ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "kubernetes service portals", "-j", "KUBE-SERVICES"]),
]


@dataclass(frozen=True)
class NodeContext:
    node_name: str
    cluster_cidr: str = ""           # pod traffic is not masqueraded to ClusterIPs
    masquerade_all: bool = False


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + _hash(sp.port_key + sp.protocol)


def svl_chain(sp: ServicePort) -> str:
    return "KUBE-SVL-" + _hash(sp.port_key + sp.protocol)


def ext_chain(sp: ServicePort) -> str:
    return "KUBE-EXT-" + _hash(sp.port_key + sp.protocol)


def sep_chain(sp: ServicePort, endpoint: Endpoint) -> str:
    return "KUBE-SEP-" + _hash(sp.port_key + sp.protocol + endpoint.address)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _match(sp: ServicePort) -> str:
    return f"-m {sp.protocol} -p {sp.protocol}"


def _cluster_endpoints(sp: ServicePort, ctx: NodeContext) -> list[Endpoint]:
    return sp.usable_endpoints()


def _local_endpoints(sp: ServicePort, ctx: NodeContext) -> list[Endpoint]:
    return sp.usable_endpoints(local_only=True, node=ctx.node_name)


def _balance(chain: str, sp: ServicePort, endpoints: list[Endpoint]) -> list[str]:
    rules = []
    if sp.affinity_seconds:
        for endpoint in endpoints:
            sep = sep_chain(sp, endpoint)
            rules.append(f"-A {chain} {_comment(f'{sp.port_key} -> {endpoint.address}')} "
                         f"-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck "
                         f"--seconds {sp.affinity_seconds} --reap -j {sep}")
    count = len(endpoints)
    for index, endpoint in enumerate(endpoints):
        statistic = "" if index == count - 1 else \
            f"-m statistic --mode random --probability {1.0 / (count - index):.11f} "
        rules.append(f"-A {chain} {_comment(f'{sp.port_key} -> {endpoint.address}')} "
                     f"{statistic}-j {sep_chain(sp, endpoint)}")
    return rules


def service_chains(sp: ServicePort, ctx: NodeContext) -> dict[str, list[str]]:
    """The nat chains one service port owns, with their rules (none without any endpoint)."""
    cluster = _cluster_endpoints(sp, ctx)
    if not cluster:
        return {}
    chains: dict[str, list[str]] = {}
    svc = svc_chain(sp)
    masq = []
    destination = f"{_match(sp)} -d {sp.cluster_ip}/32 --dport {sp.port}"
    if ctx.masquerade_all:
        masq = [f"-A {svc} {_comment(sp.port_key + ' cluster IP')} {destination} "
                "-j KUBE-MARK-MASQ"]
    elif ctx.cluster_cidr:
        masq = [f"-A {svc} {_comment(sp.port_key + ' cluster IP')} {destination} "
                f"! -s {ctx.cluster_cidr} -j KUBE-MARK-MASQ"]
    chains[svc] = masq + _balance(svc, sp, cluster)
    local = _local_endpoints(sp, ctx)
    if sp.internal_local or sp.external_local:
        chains[svl_chain(sp)] = _balance(svl_chain(sp), sp, local)
    if sp.node_port:
        ext = ext_chain(sp)
        if sp.external_local:
            rules = []
            if ctx.cluster_cidr:
                rules.append(f"-A {ext} {_comment(f'pod traffic for {sp.port_key} external destinations')} "
                             f"-s {ctx.cluster_cidr} -j {svc}")
            rules += [f"-A {ext} {_comment(f'masquerade LOCAL traffic for {sp.port_key} external destinations')} "
                      "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                      f"-A {ext} {_comment(f'route LOCAL traffic for {sp.port_key} external destinations')} "
                      f"-m addrtype --src-type LOCAL -j {svc}",
                      f"-A {ext} -j {svl_chain(sp)}"]
        else:
            rules = [f"-A {ext} {_comment(f'masquerade traffic for {sp.port_key} external destinations')} "
                     "-j KUBE-MARK-MASQ", f"-A {ext} -j {svc}"]
        chains[ext] = rules
    for endpoint in {*cluster, *local}:
        sep = sep_chain(sp, endpoint)
        recent = f"-m recent --name {sep} --mask 255.255.255.255 --rsource --set " \
            if sp.affinity_seconds else ""
        chains[sep] = [
            f"-A {sep} {_comment(sp.port_key)} -s {endpoint.ip}/32 -j KUBE-MARK-MASQ",
            f"-A {sep} {_comment(sp.port_key)} {_match(sp)} {recent}"
            f"-j DNAT --to-destination {endpoint.address}"]
    return chains


def top_level(ports: list[ServicePort], ctx: NodeContext) -> tuple[dict, dict]:
    """(nat chains, filter chains) every sync rewrites whole: the per-port jumps and rejects."""
    nat: dict[str, list[str]] = {name: [] for name in NAT_TOP}
    filt: dict[str, list[str]] = {name: [] for name in FILTER_TOP}
    for sp in ports:
        cluster = _cluster_endpoints(sp, ctx)
        local = _local_endpoints(sp, ctx)
        destination = f"{_match(sp)} -d {sp.cluster_ip}/32 --dport {sp.port}"
        internal = local if sp.internal_local else cluster
        if internal:
            target = svl_chain(sp) if sp.internal_local else svc_chain(sp)
            nat["KUBE-SERVICES"].append(f"-A KUBE-SERVICES {_comment(sp.port_key + ' cluster IP')} "
                                        f"{destination} -j {target}")
        else:
            why, verdict = ("has no local endpoints", "DROP") if cluster else \
                ("has no endpoints", "REJECT")
            filt["KUBE-SERVICES"].append(f"-A KUBE-SERVICES {_comment(f'{sp.port_key} {why}')} "
                                         f"{destination} -j {verdict}")
        if sp.node_port:
            external = local if sp.external_local else cluster
            if cluster:
                nat["KUBE-NODEPORTS"].append(f"-A KUBE-NODEPORTS {_comment(sp.port_key)} "
                                             f"{_match(sp)} --dport {sp.node_port} "
                                             f"-j {ext_chain(sp)}")
            if not external:
                why, verdict = ("has no local endpoints", "DROP") if cluster else \
                    ("has no endpoints", "REJECT")
                filt["KUBE-EXTERNAL-SERVICES"].append(
                    f"-A KUBE-EXTERNAL-SERVICES {_comment(f'{sp.port_key} {why}')} "
                    f"-m addrtype --dst-type LOCAL {_match(sp)} --dport {sp.node_port} "
                    f"-j {verdict}")
    nat["KUBE-SERVICES"].append(
        "-A KUBE-SERVICES " + _comment("kubernetes service nodeports; NOTE: this must be the "
                                       "last rule in this chain")
        + " -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    nat["KUBE-MARK-MASQ"] = [f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"]
    nat["KUBE-POSTROUTING"] = [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        "-A KUBE-POSTROUTING " + _comment("kubernetes service traffic requiring SNAT")
        + " -j MASQUERADE --random-fully"]
    filt["KUBE-FORWARD"] = [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD " + _comment("kubernetes forwarding rules")
        + f" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        "-A KUBE-FORWARD " + _comment("kubernetes forwarding conntrack rule")
        + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    return nat, filt


def restore_text(nat: dict[str, list[str]], filt: dict[str, list[str]],
                 stale_nat: set[str] = frozenset()) -> str:
    """iptables-restore --noflush input: the named chains flushed and refilled, stale ones gone."""
    lines = ["*filter"]
    lines += [f":{chain} - [0:0]" for chain in filt]
    for rules in filt.values():
        lines += rules
    lines += ["COMMIT", "*nat"]
    lines += [f":{chain} - [0:0]" for chain in [*nat, *sorted(stale_nat)]]
    for rules in nat.values():
        lines += rules
    lines += [f"-X {chain}" for chain in sorted(stale_nat)]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
