"""Host entries as declared in the cluster file or an inventory, and their SSH settings.

Each entry remembers which file declared it, so problems name the right field and relative
key paths resolve against the right directory. SSH settings resolve field by field:
the host's own `ssh` > the `ssh` of the file that declared the host > the cluster's
`spec.ssh` > the defaults (user root, port 22, key ~/.ssh/id_ed25519).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.spec.model import DEFAULT_SSH_KEY, DEFAULT_SSH_PORT, DEFAULT_SSH_USER
from provisioner.spec.problems import Origin, PathPart

DEFAULTS: dict[str, Any] = {"user": DEFAULT_SSH_USER, "port": DEFAULT_SSH_PORT,
                            "key": DEFAULT_SSH_KEY}
DEFAULT_KEY_FIELD = "spec.ssh.key"


def well_typed(setting: str, value: Any) -> bool:
    """Whether an ssh setting has the type the schema asks for (others are already reported)."""
    if setting == "port":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) and value != ""


def resolve_path(text: str, base: Path) -> Path:
    """`~` expanded; relative paths taken from `base`; the result absolute and normalized.

    A `~user` that names no user stays as written (the file is then reported missing)."""
    try:
        path = Path(text).expanduser()
    except RuntimeError:
        path = Path(text)
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


@dataclass(frozen=True)
class SSHLayer:
    """One `ssh` mapping and where it was written."""

    values: dict
    origin: Origin
    parts: tuple[PathPart, ...]
    base: Path

    def field(self, setting: str) -> str:
        return self.origin.field(*self.parts, setting)


@dataclass(frozen=True)
class Setting:
    """A resolved ssh setting: its value and the field that set it (None: a default)."""

    value: Any
    field: str | None


@dataclass(frozen=True)
class HostEntry:
    """One item of a `hosts` list, with the file context needed to check and build it."""

    doc: Any
    origin: Origin
    parts: tuple[PathPart, ...]
    base: Path
    file_ssh: SSHLayer
    cluster_ssh: SSHLayer

    @property
    def where(self) -> str:
        """The entry's own field path, like `spec.hosts[2]`."""
        return self.origin.field(*self.parts)

    def field(self, *more: PathPart) -> str:
        return self.origin.field(*self.parts, *more)

    def get(self, key: str) -> Any:
        return self.doc.get(key) if isinstance(self.doc, dict) else None

    def layers(self) -> list[SSHLayer]:
        own = self.get("ssh")
        found = [self.file_ssh, self.cluster_ssh]
        if isinstance(own, dict):
            found.insert(0, SSHLayer(own, self.origin, (*self.parts, "ssh"), self.base))
        return found

    def ssh(self, setting: str) -> Setting | None:
        """The effective value of `user`, `port` or `key`; None when the winning one is bad."""
        for layer in self.layers():
            if setting in layer.values:
                value = layer.values[setting]
                if not well_typed(setting, value):
                    return None
                if setting == "key":
                    value = resolve_path(value, layer.base)
                return Setting(value, layer.field(setting))
        default = DEFAULTS[setting]
        if setting == "key":
            return Setting(resolve_path(default, Path.cwd()), None)
        return Setting(default, None)


def entries_from(hosts: Any, origin: Origin, parts: tuple[PathPart, ...], base: Path,
                 file_ssh: SSHLayer, cluster_ssh: SSHLayer) -> list[HostEntry]:
    """Host entries for the items of a `hosts` list (nothing if it is not a list)."""
    if not isinstance(hosts, list):
        return []
    return [HostEntry(item, origin, (*parts, index), base, file_ssh, cluster_ssh)
            for index, item in enumerate(hosts)]


def ssh_layer(doc: dict, origin: Origin, parts: tuple[PathPart, ...], base: Path) -> SSHLayer:
    """The `ssh` mapping found at `parts` in `doc` (empty if absent or not a mapping)."""
    value: Any = doc
    for part in parts:
        value = value.get(part) if isinstance(value, dict) else None
    return SSHLayer(value if isinstance(value, dict) else {}, origin, parts, base)
