"""The rows of a cluster's certificate table: authorities, certificates, signing keys.

As kubeadm's certificate list, a row says everything about one credential: its file name, the
CA that signs it, its subject (CN, one O per group), its SANs, its usages, which host roles
receive it and where it lands on them. Phases declare their rows (`Owned.certificates` in
provisioner.phases.owned); issuing (provisioner.pki.cluster), placing on hosts, delete, verify
and `certs check-expiration` all read the one table built from the workflow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ALL_HOSTS = "all"  # a role name matching every host
# A role name matching the workers that join by TLS bootstrap: those that are not also
# control-plane hosts (a control-plane host's kubelet has its credentials from `kubeconfig`).
JOINING = "joining"


def has_role(host: Any, roles: Sequence[str]) -> bool:
    if ALL_HOSTS in roles or any(role in host.roles for role in roles):
        return True
    return JOINING in roles and "worker" in host.roles and "control-plane" not in host.roles


@dataclass(frozen=True)
class Subject:
    """What a row's callables read: the cluster spec and, for a per-host row, the host."""

    spec: Any  # provisioner.spec.ClusterSpec
    host: Any = None  # provisioner.spec.Host


@dataclass(frozen=True)
class PlacedFile:
    """One file of the table on one host: its name under the local PKI directory, where it
    lands, and whether it is a private key (0600)."""

    local: str
    remote: str
    secret: bool

    @property
    def mode(self) -> str:
        return "600" if self.secret else "644"


@dataclass(frozen=True)
class Authority:
    """A CA: `name`.crt/.key under the PKI directory; hosts with `roles` get the certificate,
    hosts with `key_roles` also the key (they sign, as a control plane does)."""

    name: str
    common_name: str
    remote: str | None = None  # remote path without suffix
    roles: tuple[str, ...] = ()
    key_roles: tuple[str, ...] = ()
    days: int = 3650

    def files(self, subject: Subject) -> list[PlacedFile]:
        host = subject.host
        if self.remote is None or host is None:
            return []
        placed = []
        if has_role(host, self.roles) or has_role(host, self.key_roles):
            placed.append(PlacedFile(f"{self.name}.crt", f"{self.remote}.crt", False))
        if has_role(host, self.key_roles):
            placed.append(PlacedFile(f"{self.name}.key", f"{self.remote}.key", True))
        return placed


@dataclass(frozen=True)
class Certificate:
    """A leaf certificate and its key, signed by the authority called `ca`.

    A `per_host` row is issued once for every host with `roles`, as `name`-<host>, and lands
    on that host alone; any other row is issued once for the cluster and lands on every host
    with `roles` (none: it stays on the operator, as the admin credential does).
    `sans(subject)` lists DNS names and IP addresses together; IPs are told apart by parsing.
    """

    name: str
    ca: str
    common_name: str | Callable[[Subject], str]
    organizations: tuple[str, ...] = ()
    sans: Callable[[Subject], Sequence[str]] | None = None
    usages: tuple[str, ...] = ("client",)  # "server" and/or "client"
    roles: tuple[str, ...] = ()
    remote: str | None = None  # remote path without suffix
    per_host: bool = False
    days: int = 365

    def local_name(self, subject: Subject) -> str:
        return f"{self.name}-{subject.host.name}" if self.per_host else self.name

    def subject_name(self, subject: Subject) -> str:
        return self.common_name(subject) if callable(self.common_name) else self.common_name

    def alt_names(self, subject: Subject) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(DNS names, IP addresses), each without duplicates, in the order given."""
        names = list(dict.fromkeys(self.sans(subject))) if self.sans else []
        ips = tuple(n for n in names if _is_ip(n))
        return tuple(n for n in names if not _is_ip(n)), ips

    def files(self, subject: Subject) -> list[PlacedFile]:
        host = subject.host
        if self.remote is None or host is None or not has_role(host, self.roles):
            return []
        local = self.local_name(subject)
        return [PlacedFile(f"{local}.crt", f"{self.remote}.crt", False),
                PlacedFile(f"{local}.key", f"{self.remote}.key", True)]


@dataclass(frozen=True)
class SigningKey:
    """A bare key pair (the service-account signing key): `name`.key and `name`.pub."""

    name: str
    remote: str | None = None
    roles: tuple[str, ...] = ()

    def files(self, subject: Subject) -> list[PlacedFile]:
        host = subject.host
        if self.remote is None or host is None or not has_role(host, self.roles):
            return []
        return [PlacedFile(f"{self.name}.key", f"{self.remote}.key", True),
                PlacedFile(f"{self.name}.pub", f"{self.remote}.pub", False)]


Row = Authority | Certificate | SigningKey


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host_files(rows: Sequence[Row], spec: Any, host: Any) -> list[PlacedFile]:
    """Every file of `rows` that `host` holds, without duplicates, in table order."""
    seen: dict[str, PlacedFile] = {}
    for row in rows:
        for placed in row.files(Subject(spec, host)):
            seen.setdefault(placed.remote, placed)
    return list(seen.values())
