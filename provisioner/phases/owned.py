"""What a phase owns on hosts: its certificate rows, files, directories, units, data directories.

Each phase declares one `Owned` (the `owns` of its Phase); `ownership(phases)` merges a
workflow's declarations. Everything that needs to know what create places reads them: the pki
phase issues and places the certificate table, `delete` removes what each phase owns (in reverse
order), the dry run names them, verify checks they are in place and `certs check-expiration`
lists the table. No other module lists paths on hosts.

Roles select hosts: "etcd", "control-plane", "worker", or "all".
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provisioner.pki.table import ALL_HOSTS, Row, has_role, host_files
from provisioner.spec import ClusterSpec, Host
from provisioner.spec.paths import SHARED_DIRECTORIES, SYSTEM_TREES
from provisioner.workflow import Phase, walk

# Where this project keeps itself and its credentials on hosts.
REMOTE_ROOT = "/opt/provisioner"
REMOTE_VENV = f"{REMOTE_ROOT}/venv"
REMOTE_WHEELHOUSE = f"{REMOTE_ROOT}/wheelhouse"
REMOTE_PKI = "/etc/kubernetes/pki"
SYSTEMD_DIR = "/etc/systemd/system"
# Directories that existed before create (mkdir -p made what is below them); delete stops there.
# Lab hosts mount /var/lib/provisioner (the runtime's root and the registry's storage live below
# it), so it is never a directory create made.
SYSTEM_PARENTS = frozenset({"/", *SYSTEM_TREES, *SHARED_DIRECTORIES, "/var/lib/provisioner"})

PathOf = str | Callable[[ClusterSpec], str]
# A further condition on a declaration beyond its roles (the registry: only the host that runs
# it, only while the spec enables it); None: the roles alone decide.
HostTest = Callable[[ClusterSpec, Host], bool] | None


def _resolve(path: PathOf, spec: ClusterSpec) -> str:
    return path(spec) if callable(path) else path


@dataclass(frozen=True)
class File:
    """A file a phase writes. `secret`: 0600 content never shown, not even as a diff."""

    path: PathOf
    roles: tuple[str, ...] = (ALL_HOSTS,)
    mode: str = "644"
    secret: bool = False
    only: HostTest = None


@dataclass(frozen=True)
class Directory:
    """A directory a phase creates; delete removes it only when nothing else is left in it."""

    path: PathOf
    roles: tuple[str, ...] = (ALL_HOSTS,)
    mode: str = "755"
    only: HostTest = None


@dataclass(frozen=True)
class Unit:
    """A systemd unit a phase installs: stopped, disabled and removed by delete."""

    name: str
    roles: tuple[str, ...] = (ALL_HOSTS,)
    only: HostTest = None

    @property
    def path(self) -> str:
        return f"{SYSTEMD_DIR}/{self.name}"


@dataclass(frozen=True)
class DataDir:
    """A tree a phase owns wholesale (a virtualenv, etcd's data): delete removes all of it."""

    path: PathOf
    roles: tuple[str, ...] = (ALL_HOSTS,)
    mode: str = "700"
    only: HostTest = None


@dataclass(frozen=True)
class HostFile:
    """A file on one host: where, its mode, and whether its content may be shown."""

    path: str
    mode: str
    secret: bool


@dataclass(frozen=True)
class HostShare:
    """What one or more phases own on one host, with every path resolved."""

    files: tuple[HostFile, ...] = ()
    directories: tuple[str, ...] = ()  # deepest first
    units: tuple[Unit, ...] = ()
    data_dirs: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (*(u.path for u in self.units), *(f.path for f in self.files))


def _on(item: File | Directory | Unit | DataDir, spec: ClusterSpec, host: Host) -> bool:
    return has_role(host, item.roles) and (item.only is None or item.only(spec, host))


def created_directories(paths: Sequence[str]) -> list[str]:
    """The directories create made for `paths`: their parents up to a system parent."""
    found: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent not in SYSTEM_PARENTS:
            found.add(parent)
            parent = posixpath.dirname(parent)
    return deepest_first(found)


def deepest_first(directories: Sequence[str] | set[str]) -> list[str]:
    return sorted(set(directories), key=lambda d: (-d.count("/"), d))


@dataclass(frozen=True)
class Owned:
    """One phase's declaration (or a merged workflow's)."""

    certificates: tuple[Row, ...] = ()
    files: tuple[File, ...] = ()
    directories: tuple[Directory, ...] = ()
    units: tuple[Unit, ...] = ()
    data_dirs: tuple[DataDir, ...] = ()

    def __bool__(self) -> bool:
        return any((self.certificates, self.files, self.directories, self.units, self.data_dirs))

    def __add__(self, other: "Owned") -> "Owned":
        return Owned(*(getattr(self, f) + getattr(other, f) for f in
                       ("certificates", "files", "directories", "units", "data_dirs")))

    def share(self, spec: ClusterSpec, host: Host) -> HostShare:
        """Everything this declaration places on `host`.

        Files are the declared ones and the host's share of the certificate table; the
        directories are the declared ones and every parent a file needed, up to a system
        directory (/etc, /opt, /var/lib...).
        """
        placed = [HostFile(_resolve(f.path, spec), f.mode, f.secret)
                  for f in self.files if _on(f, spec, host)]
        placed += [HostFile(p.remote, p.mode, True)  # certificates too: never shown
                   for p in host_files(self.certificates, spec, host)]
        declared = [_resolve(d.path, spec) for d in self.directories if _on(d, spec, host)]
        directories = deepest_first({*declared, *created_directories([f.path for f in placed]),
                                     *created_directories(declared)})
        return HostShare(
            files=tuple(dict.fromkeys(placed)),
            directories=tuple(directories),
            units=tuple(u for u in self.units if _on(u, spec, host)),
            data_dirs=tuple(_resolve(d.path, spec) for d in self.data_dirs if _on(d, spec, host)),
        )


def ownership(phases: Sequence[Phase]) -> Owned:
    """Every declaration of a workflow, merged in workflow order."""
    merged = Owned()
    for _, phase in walk(phases):
        if isinstance(phase.owns, Owned):
            merged = merged + phase.owns
    return merged
