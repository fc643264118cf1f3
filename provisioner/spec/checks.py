"""Checks that span several fields or look at the operator's file system.

They run after the schema, on whatever parts of the document are well typed, so a file with
both kinds of mistakes gets every problem reported at once. Each check returns problems;
`roles_warnings` returns warnings (an even etcd member count is allowed but unwise).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import paramiko

from provisioner.spec.hosts import DEFAULT_KEY_FIELD, HostEntry, resolve_path
from provisioner.spec.paths import local_path_problem
from provisioner.spec.problems import Problem, capped

HOSTS_FIELD = "spec.hosts"


def address_key(address: str) -> str:
    """The form two addresses are compared in: canonical IP, or lower-case hostname."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address.lower().rstrip(".")


def duplicates(entries: list[HostEntry]) -> list[Problem]:
    """Later host names and addresses that repeat an earlier one, naming the first."""
    problems = []
    for key, what, normalize in (("name", "host name", str), ("address", "address", address_key)):
        first: dict[str, HostEntry] = {}
        for entry in entries:
            value = entry.get(key)
            if not isinstance(value, str):
                continue
            earlier = first.setdefault(normalize(value), entry)
            if earlier is not entry:
                problems.append(Problem(entry.field(key),
                                        f'duplicate {what} "{capped(value)}" (also {earlier.where})'))
    return problems


def roles_of(entry: HostEntry) -> set[str]:
    roles = entry.get("roles")
    return {role for role in roles if isinstance(role, str)} if isinstance(roles, list) else set()


def roles(entries: list[HostEntry]) -> list[Problem]:
    """At least one host and one etcd member; workers need a control-plane host.

    A spec of etcd hosts alone is an etcd cluster on its own (as kubeadm's external etcd
    topology): the Kubernetes phases have nothing to do. Role counts are only checked when every
    host's roles could be read.
    """
    if not entries:
        return [Problem(HOSTS_FIELD, "at least one host is required "
                                     "(in spec.hosts or in the spec.inventory file)")]
    if not all(isinstance(entry.get("roles"), list) for entry in entries):
        return []  # some host's roles are unreadable; the schema has said so
    problems = []
    if not any("etcd" in roles_of(entry) for entry in entries):
        problems.append(Problem(HOSTS_FIELD, "at least one host needs the etcd role"))
    has_workers = any("worker" in roles_of(entry) for entry in entries)
    if has_workers and not any("control-plane" in roles_of(entry) for entry in entries):
        problems.append(Problem(HOSTS_FIELD, "workers need a host with the control-plane role "
                                             "(their kubelets reach its API server)"))
    return problems


def roles_warnings(entries: list[HostEntry]) -> list[Problem]:
    """An even number of etcd members tolerates no more failures than one member fewer."""
    count = sum("etcd" in roles_of(entry) for entry in entries)
    if count == 0 or count % 2:
        return []
    if count == 2:
        text = "2 etcd members cannot survive the loss of one; use an odd number"
    else:
        text = (f"{count} etcd members survive no more failures than {count - 1} would; "
                "use an odd number")
    return [Problem(HOSTS_FIELD, text)]


def networks(networking: Any) -> list[Problem]:
    """podCIDR and serviceCIDR: the same IP version and not overlapping."""
    if not isinstance(networking, dict):
        return []
    try:
        pod = ipaddress.ip_network(networking.get("podCIDR"), strict=True)
        service = ipaddress.ip_network(networking.get("serviceCIDR"), strict=True)
    except (TypeError, ValueError):
        return []  # the schema has reported why
    field = "spec.networking.serviceCIDR"
    if pod.version != service.version:
        return [Problem(field, f"must be an IPv{pod.version} network like "
                               f"spec.networking.podCIDR ({pod}); found {service}")]
    if pod.overlaps(service):
        return [Problem(field, f"{service} overlaps spec.networking.podCIDR {pod}")]
    return []


def etcd_ports(etcd: Any) -> list[Problem]:
    if not isinstance(etcd, dict):
        return []
    client, peer = etcd.get("clientPort"), etcd.get("peerPort")
    if isinstance(client, int) and client == peer:
        return [Problem("spec.etcd.peerPort", f"must differ from spec.etcd.clientPort "
                                              f"(both are {client})")]
    return []


def key_files(entries: list[HostEntry]) -> list[Problem]:
    """Every host's effective SSH key is a readable, unencrypted private key; reported once
    per field."""
    problems: list[Problem] = []
    seen: set[tuple[str, Path]] = set()
    for entry in entries:
        setting = entry.ssh("key")
        if setting is None:
            continue
        field = setting.field or DEFAULT_KEY_FIELD
        if (field, setting.value) in seen:
            continue
        seen.add((field, setting.value))
        message = file_problem(setting.value) or private_key_problem(setting.value)
        if message and setting.field is None:
            message += " (the default key; set spec.ssh.key to use another)"
        if message:
            problems.append(Problem(field, message))
    return problems


def file_problem(path: Path) -> str | None:
    return local_path_problem(path, "file")


PUBLIC_KEY_PREFIXES = (b"ssh-", b"ecdsa-", b"sk-", b"---- BEGIN SSH2 PUBLIC KEY")
KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def private_key_problem(path: Path) -> str | None:
    """Why paramiko cannot log in with the key file at `path` (an existing, readable file).

    Checked here so a public key or a passphrase-protected key is named now, with its field,
    instead of failing later as an unclear SSH error on every host.
    """
    encrypted = False
    for key_type in KEY_TYPES:
        try:
            key_type.from_private_key_file(str(path))
            return None
        except paramiko.PasswordRequiredException:
            encrypted = True
        except Exception:  # noqa: BLE001 - paramiko raises many kinds for "not this type"
            continue
    if encrypted:
        return (f"{path} is protected by a passphrase; passphrase-protected keys are not "
                "supported (nor is ssh-agent): use an unencrypted key readable only by you")
    with path.open("rb") as key_file:
        head = key_file.read(64).lstrip()
    if path.suffix == ".pub" or head.startswith(PUBLIC_KEY_PREFIXES):
        return f"{path} is not a private key (a public key?)"
    return f"{path} is not an SSH private key (expected an Ed25519, ECDSA or RSA private key)"


def wheelhouse(artifacts: Any, base: Path) -> list[Problem]:
    value = artifacts.get("wheelhouse") if isinstance(artifacts, dict) else None
    if not isinstance(value, str) or not value:
        return []
    problem = local_path_problem(resolve_path(value, base), "directory")
    return [Problem("spec.artifacts.wheelhouse", problem)] if problem else []
