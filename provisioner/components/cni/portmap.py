"""cni/portmap: the ``provisioner-portmap`` plugin (chained after a bridge): a pod's hostPorts from
the runtime's ``portMappings`` capability become DNAT rules in the nat table.

Layout: ``PROVISIONER-HOSTPORTS`` is jumped to from PREROUTING and OUTPUT for traffic to a local
address; it jumps to one chain per pod, ``PROV-HP-<hash of network and container>``, holding one DNAT
per mapping. A pod reaching its own hostPort (hairpin) is masqueraded so the reply returns through
the host. DEL removes the pod's chain and jumps; with no ``prevResult`` it still finds them by name.
"""

from __future__ import annotations

import hashlib
import ipaddress

from . import iptables
from .protocol import INVALID_CONFIGURATION, UNKNOWN_CONTAINER, CniFailure, Invocation

TOP_CHAIN = "PROVISIONER-HOSTPORTS"
MASQ_CHAIN = "PROVISIONER-HOSTPORTS-MASQ"


def pod_chain(invocation: Invocation) -> str:
    key = f"{invocation.network}/{invocation.container_id}"
    return "PROV-HP-" + hashlib.sha256(key.encode()).hexdigest()[:16].upper()


def _pod_address(invocation: Invocation) -> str:
    for ip in invocation.prev_result.get("ips", []):
        if ":" not in ip["address"]:
            return str(ipaddress.IPv4Interface(ip["address"]).ip)
    raise CniFailure(INVALID_CONFIGURATION, "provisioner-portmap must be chained after a plugin "
                     "that gives the pod an IPv4 address (no prevResult with one)")


def _mappings(invocation: Invocation) -> list[dict]:
    mappings = (invocation.config.get("runtimeConfig") or {}).get("portMappings") or []
    for mapping in mappings:
        if not isinstance(mapping, dict) or not mapping.get("hostPort") or \
                not mapping.get("containerPort"):
            raise CniFailure(INVALID_CONFIGURATION, f"portMappings entry {mapping!r} needs "
                             "hostPort and containerPort")
    return mappings


def _ensure_top_chains() -> None:
    iptables.ensure_chain("nat", TOP_CHAIN)
    iptables.ensure_chain("nat", MASQ_CHAIN)
    jump = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", TOP_CHAIN]
    iptables.ensure_rule("nat", "PREROUTING", jump)
    iptables.ensure_rule("nat", "OUTPUT", jump)
    iptables.ensure_rule("nat", "POSTROUTING", ["-j", MASQ_CHAIN])


def _jump(invocation: Invocation) -> list[str]:
    return ["-m", "comment", "--comment", f"provisioner-portmap {invocation.container_id}"[:255],
            "-j", pod_chain(invocation)]


def _hairpin(invocation: Invocation, address: str) -> list[str]:
    return ["-s", address, "-d", address, "-m", "comment", "--comment",
            f"provisioner-portmap {invocation.container_id}"[:255], "-j", "MASQUERADE"]


def add(invocation: Invocation) -> dict:
    result = invocation.prev_result
    mappings = _mappings(invocation)
    if not mappings:
        return result
    address = _pod_address(invocation)
    _ensure_top_chains()
    chain = pod_chain(invocation)
    iptables.delete_chain("nat", chain)
    iptables.ensure_chain("nat", chain)
    for mapping in mappings:
        protocol = str(mapping.get("protocol") or "tcp").lower()
        host_ip = mapping.get("hostIP") or ""
        iptables.run("-t", "nat", "-A", chain, "-p", protocol,
                     *(["-d", host_ip] if host_ip and host_ip != "0.0.0.0" else []),
                     "--dport", str(mapping["hostPort"]), "-j", "DNAT", "--to-destination",
                     f"{address}:{mapping['containerPort']}")
    iptables.ensure_rule("nat", TOP_CHAIN, _jump(invocation))
    iptables.ensure_rule("nat", MASQ_CHAIN, _hairpin(invocation, address))
    return result


def delete(invocation: Invocation) -> None:
    invocation.needs("CNI_CONTAINERID")
    chain = pod_chain(invocation)
    iptables.delete_rule("nat", TOP_CHAIN, _jump(invocation))
    iptables.delete_chain("nat", chain)
    try:
        address = _pod_address(invocation)
    except CniFailure:
        return
    iptables.delete_rule("nat", MASQ_CHAIN, _hairpin(invocation, address))


def check(invocation: Invocation) -> None:
    if _mappings(invocation) and not iptables.exists("nat", TOP_CHAIN, _jump(invocation)):
        raise CniFailure(UNKNOWN_CONTAINER, f"the hostPort rules of container "
                         f"{invocation.container_id} are missing ({pod_chain(invocation)})")
