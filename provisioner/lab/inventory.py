"""The inventory file a lab writes for `provisioner create cluster`, and the lab's role layout.

Place: shared by the nspawn lab (lab.py) and the Vagrant provider (vagrant.py), so both write
the same shape. The file is rendered by hand rather than by yaml.dump so it reads exactly like
the documented example (one flow mapping per host), and rewritten only when its content changes
so a second `lab up` reports no change.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

API_VERSION = "provisioner.dev/v1alpha1"


class InventoryHost(Protocol):
    name: str
    address: str
    roles: tuple[str, ...]


def roles_for(nodes: int) -> list[list[str]]:
    """Roles of hosts 1..nodes: an etcd quorum of three where possible, the rest workers."""
    if nodes == 1:
        return [["control-plane", "etcd", "worker"]]
    if nodes == 2:
        return [["control-plane", "etcd"], ["worker"]]
    roles = [["control-plane", "etcd"], ["etcd", "worker"], ["etcd", "worker"]]
    return roles + [["worker"] for _ in range(nodes - 3)]


def _flow(mapping: Mapping[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        if isinstance(value, (list, tuple)):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        elif isinstance(value, Mapping):
            value = _flow(value)
        parts.append(f"{key}: {value}")
    return "{" + ", ".join(parts) + "}"


def render(
    hosts: Iterable[InventoryHost],
    key: Path,
    user: str = "root",
    port: int = 22,
    host_ssh: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The inventory text; `host_ssh` adds per-host ssh overrides (Vagrant: port, key)."""
    lines = [
        f"apiVersion: {API_VERSION}",
        "kind: Inventory",
        _flow_line("ssh", {"user": user, "port": port, "key": str(key)}),
        "hosts:",
    ]
    for host in hosts:
        entry: dict[str, Any] = {"name": host.name, "address": host.address,
                                 "roles": list(host.roles)}
        if host_ssh and host_ssh.get(host.name):
            entry["ssh"] = dict(host_ssh[host.name])
        lines.append(f"  - {_flow(entry)}")
    return "\n".join(lines) + "\n"


def _flow_line(key: str, mapping: Mapping[str, Any]) -> str:
    return f"{key}: {_flow(mapping)}"


def write(path: Path, hosts: Sequence[InventoryHost], key: Path, **options: Any) -> bool:
    """Write the inventory if its content differs; True when the file changed."""
    text = render(hosts, key.resolve(), **options)
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
