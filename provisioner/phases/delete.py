"""`delete cluster`: stop and remove exactly what `create cluster` put on the hosts.

Create places files into directories that may have existed before (/etc/kubernetes, /etc/etcd)
and may hold other things, so delete removes only the files and trees create owns, then the
directories create made, and those only when nothing else is left in them. One probe per host
says what is there; only what is present becomes an operation, so a second delete (or one run
after an interrupted delete) reports nothing to change.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyinfra.operations import server, systemd

from provisioner.phases.context import (
    ETCD_UNIT,
    ETCD_UNIT_PATH,
    REMOTE_ETCD_CONFIG,
    REMOTE_VENV,
    REMOTE_WHEELHOUSE,
    ClusterContext,
)
from provisioner.phases.pki import host_files
from provisioner.spec import ClusterSpec, Host
from provisioner.workflow import Phase, PhaseOutcome

ETCD_INITIAL_ENV = f"{REMOTE_ETCD_CONFIG}/initial-cluster.env"
# Where create's directories stop: these existed before (mkdir -p made what is below them).
SYSTEM_PARENTS = ("/etc", "/opt")


@dataclass(frozen=True)
class Removals:
    """What create put on one host: files, whole trees, and directories to remove if empty."""

    files: tuple[str, ...]
    trees: tuple[str, ...]
    directories: tuple[str, ...]  # deepest first


@dataclass(frozen=True)
class Step:
    description: str
    command: str


@dataclass
class Plan:
    """What delete does on one host, given what the probe found there."""

    stop_unit: bool = False
    steps: list[Step] = field(default_factory=list)

    @property
    def unit_removed(self) -> bool:
        return any(step.description == f"remove {ETCD_UNIT_PATH}" for step in self.steps)


def created_directories(paths: list[str]) -> list[str]:
    """The directories create made for `paths`: their parents up to a system parent."""
    found: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent not in SYSTEM_PARENTS and parent != "/":
            found.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(found, key=lambda d: (-d.count("/"), d))


def host_removals(spec: ClusterSpec, host: Host) -> Removals:
    """Everything create placed on `host`, from the same lists create works from."""
    files = [remote for _, remote, _ in host_files(spec, host)]
    trees = [REMOTE_VENV, REMOTE_WHEELHOUSE]
    if host.is_etcd:
        files = [ETCD_UNIT_PATH, ETCD_INITIAL_ENV, *files]
        trees.append(spec.etcd.data_dir)
    placed = [*files, REMOTE_VENV, REMOTE_WHEELHOUSE]
    directories = created_directories([p for p in placed if p != ETCD_UNIT_PATH])
    return Removals(tuple(files), tuple(trees), tuple(directories))


def merged(many: Iterable[Removals]) -> Removals:
    """Every path of several hosts' removals (for one probe that serves them all)."""
    many = list(many)
    directories = {d for r in many for d in r.directories}
    return Removals(
        tuple(dict.fromkeys(f for r in many for f in r.files)),
        tuple(dict.fromkeys(t for r in many for t in r.trees)),
        tuple(sorted(directories, key=lambda d: (-d.count("/"), d))),
    )


def probe_command(removals: Removals) -> str:
    """A read-only command printing `present PATH` for what exists, and `entry PATH` for
    every entry of each existing directory (hidden ones too)."""
    paths = " ".join(shlex.quote(p) for p in (*removals.files, *removals.trees,
                                              *removals.directories))
    directories = " ".join(shlex.quote(d) for d in removals.directories)
    return (
        f'for p in {paths}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "present $p"; fi; '
        f"done; for d in {directories}; do [ -d \"$d\" ] || continue; "
        'for e in "$d"/* "$d"/.[!.]* "$d"/..?*; do '
        'if [ -e "$e" ] || [ -L "$e" ]; then echo "entry $e"; fi; done; done; true'
    )


def plan(removals: Removals, probe_output: str) -> Plan:
    """The steps that remove what is present; a directory only if nothing else is in it."""
    present: set[str] = set()
    entries: dict[str, set[str]] = {d: set() for d in removals.directories}
    for line in probe_output.splitlines():
        kind, _, path = line.partition(" ")
        if kind == "present":
            present.add(path)
        elif kind == "entry":
            entries.setdefault(posixpath.dirname(path), set()).add(path)
    result = Plan(stop_unit=ETCD_UNIT_PATH in present)
    gone: set[str] = set()
    for path in removals.files:
        if path in present:
            result.steps.append(Step(f"remove {path}", f"rm -f -- {shlex.quote(path)}"))
            gone.add(path)
    for tree in removals.trees:
        if tree in present:
            result.steps.append(Step(f"remove {tree}", f"rm -rf -- {shlex.quote(tree)}"))
            gone.add(tree)
    for directory in removals.directories:  # deepest first, so parents see children gone
        if directory in present and entries.get(directory, set()) <= gone:
            result.steps.append(Step(f"remove empty directory {directory}",
                                     f"rmdir -- {shlex.quote(directory)}"))
            gone.add(directory)
    return result


def run(ctx: ClusterContext) -> PhaseOutcome:
    outcome = PhaseOutcome()
    spec = ctx.spec
    removals = {host.name: host_removals(spec, host) for host in spec.hosts}
    with ctx.session() as session:
        # One probe for every host at once; each host's plan reads only its own paths.
        found = session.run(probe_command(merged(removals.values())))
        for host in spec.hosts:
            steps = plan(removals[host.name], found[host.name].stdout)
            if steps.stop_unit:
                session.op(host, f"{ETCD_UNIT} stopped and disabled", systemd.service,
                           service=ETCD_UNIT, running=False, enabled=False)
            for step in steps.steps:
                session.op(host, step.description, server.shell, commands=[step.command])
            if steps.unit_removed:
                session.op(host, "systemd reload", systemd.daemon_reload)
        changes = session.preview() if ctx.dry_run else session.apply()
    for host, descriptions in changes.by_host.items():
        for description in descriptions:
            if description != "systemd reload":
                outcome.add(host, description)
    return outcome


PHASE = Phase("delete", "removing what create installed from every host", run)
