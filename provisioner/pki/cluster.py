"""The whole PKI of one cluster, kept in one directory and reused on re-runs.

`ensure_cluster_pki` issues what is missing or no longer matches the spec (a new member, a
changed address, an expiring certificate) and leaves everything else byte-identical, so a
second run reports no change. A CA that is re-created re-issues everything it signed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioner.pki.certs import (
    CertKeyPair,
    issue,
    matches,
    new_ca,
    new_signing_key,
    write_signing_key,
)


@dataclass(frozen=True)
class Member:
    name: str
    address: str


@dataclass(frozen=True)
class _Leaf:
    name: str  # path under pki_dir without suffix, e.g. "etcd/server-cp1"
    ca: str  # "etcd/ca" or "ca"
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _member_names(member: Member) -> tuple[tuple[str, ...], tuple[str, ...]]:
    dns = [member.name, "localhost"]
    ips = ["127.0.0.1", "::1"]
    if _is_ip(member.address):
        ips.insert(0, member.address)
    elif member.address not in dns:
        dns.append(member.address)
    return tuple(dns), tuple(ips)


def _apiserver_leaf(control_plane: Sequence[Member], service_cluster_ip: str, dns_domain: str) -> _Leaf:
    dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{dns_domain}", "localhost"]
    ips = [service_cluster_ip, "127.0.0.1"]
    for member in control_plane:
        dns.append(member.name)
        (ips if _is_ip(member.address) else dns).append(member.address)
    return _Leaf("apiserver", "ca", "kube-apiserver", dns_names=tuple(dict.fromkeys(dns)),
                 ip_addresses=tuple(dict.fromkeys(ips)), server=True)


def _leaves(etcd_members: Sequence[Member], apiserver: _Leaf) -> list[_Leaf]:
    leaves: list[_Leaf] = [apiserver]
    for member in etcd_members:
        dns, ips = _member_names(member)
        for kind in ("server", "peer"):
            leaves.append(_Leaf(f"etcd/{kind}-{member.name}", "etcd/ca", member.name,
                                dns_names=dns, ip_addresses=ips, server=True, client=True))
    leaves.append(_Leaf("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client",
                        organizations=("system:masters",), client=True))
    leaves.append(_Leaf("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", client=True))
    leaves.append(_Leaf("admin", "ca", "kubernetes-admin", organizations=("system:masters",), client=True))
    return leaves


def load_pair(pki_dir: Path, name: str) -> CertKeyPair:
    path = pki_dir / name
    return CertKeyPair.load(path.parent, path.name)


def _ensure_ca(pki_dir: Path, name: str, common_name: str, created: list[str]) -> CertKeyPair:
    path = pki_dir / name
    if CertKeyPair.exists(path.parent, path.name):
        return CertKeyPair.load(path.parent, path.name)
    ca = new_ca(common_name)
    ca.save(path.parent, path.name)
    created.append(name)
    return ca


def ensure_cluster_pki(
    pki_dir: Path,
    *,
    etcd_members: Sequence[Member],
    control_plane: Sequence[Member],
    service_cluster_ip: str = "10.96.0.1",
    dns_domain: str = "cluster.local",
) -> list[str]:
    """Issue what is missing or stale; return the names issued ([] when nothing changed).

    The API server's serving certificate names every control-plane host, the first service IP
    and the in-cluster DNS names, so clients inside and outside the cluster can verify it.
    """
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    created: list[str] = []
    cas = {
        "etcd/ca": _ensure_ca(pki_dir, "etcd/ca", "etcd-ca", created),
        "ca": _ensure_ca(pki_dir, "ca", "kubernetes", created),
    }
    apiserver = _apiserver_leaf(control_plane, service_cluster_ip, dns_domain)
    for leaf in _leaves(etcd_members, apiserver):
        ca = cas[leaf.ca]
        path = pki_dir / leaf.name
        if CertKeyPair.exists(path.parent, path.name) and matches(
            CertKeyPair.load(path.parent, path.name),
            ca,
            common_name=leaf.common_name,
            organizations=leaf.organizations,
            dns_names=leaf.dns_names,
            ip_addresses=leaf.ip_addresses,
        ):
            continue
        pair = issue(ca, leaf.common_name, organizations=leaf.organizations,
                     dns_names=leaf.dns_names, ip_addresses=leaf.ip_addresses,
                     server=leaf.server, client=leaf.client)
        pair.save(path.parent, path.name)
        created.append(leaf.name)
    if not ((pki_dir / "sa.key").exists() and (pki_dir / "sa.pub").exists()):
        write_signing_key(pki_dir, "sa", new_signing_key())
        created.append("sa")
    return created
