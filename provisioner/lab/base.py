"""What every lab provider is: the small protocol the CLI and the tests talk to.

Place: below the providers (lab.py for nspawn, vagrant.py for Vagrant) and providers.py (the
table of them). A provider keeps its state in `<state root>/labs/<name>/lab.json`, which records
its `provider`, so a lab is always reopened by the provider that made it; the CLI never names a
provider itself.
"""

from __future__ import annotations

import fcntl
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from provisioner.errors import ProvisionerError

Progress = Callable[[str], None]
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class LabHost:
    """One lab host as the inventory names it, and how to reach it over SSH."""

    name: str
    address: str
    roles: tuple[str, ...] = ()
    user: str = "root"
    port: int = 22
    key: Path | None = None


class LabProvider(Protocol):
    """A named lab of one provider. `up` is idempotent; `changes` says what the last call did."""

    provider: ClassVar[str]
    default_name: ClassVar[str]
    name: str
    dir: Path
    changes: list[str]

    def __init__(self, name: str, state_root: Path | None = None,
                 progress: Progress | None = None) -> None: ...

    @property
    def inventory_path(self) -> Path: ...

    def load(self) -> dict[str, Any] | None: ...

    def up(self, nodes: int, mirror: str | None = None) -> list[LabHost]: ...

    def down(self) -> bool: ...

    def hosts(self) -> list[LabHost]: ...

    def status(self) -> str: ...

    def node_count(self) -> int: ...

    def subnet(self) -> str: ...


def default_state_root() -> Path:
    """The same root as the clusters' state (provisioner.state): one definition."""
    from provisioner.state import state_root

    return state_root()


def validate_name(name: str) -> None:
    # The name becomes hostnames (`<name>-1`), cgroup, libvirt and directory names.
    if not name or len(name) > 40 or not set(name) <= _NAME_CHARS or name[0] == "-":
        raise ProvisionerError(
            f"invalid lab name {name!r}: use 1-40 lowercase letters, digits and '-'"
        )


def repo_inventory_path(lab_name: str, default_name: str = "lab",
                        cwd: Path | None = None) -> Path | None:
    """`inventories/<default>/hosts.yaml` of the repo around cwd, for a provider's default lab
    only (`lab` for nspawn, `vagrant` for Vagrant), beside the cluster.yaml that names it."""
    if lab_name != default_name:
        return None
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file():
            return directory / "inventories" / default_name / "hosts.yaml"
    return None


def all_states(state_root: Path) -> list[dict]:
    """Every lab's recorded state, whatever its provider (they share the subnet space)."""
    states = []
    for path in sorted((state_root / "labs").glob("*/lab.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "subnet_index" in state:
            states.append(state)
    return states


@contextmanager
def global_lock() -> Iterator[None]:
    # Subnet picking must not race between labs of different state roots.
    with open("/run/provisioner-lab.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ssh_banner(address: str, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
