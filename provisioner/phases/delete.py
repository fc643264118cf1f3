"""`delete cluster`'s default clean-up: stop and remove exactly what one phase owns on a host.

`delete cluster` runs the create workflow's clean-ups in reverse order; a phase that declares
what it owns (provisioner.phases.owned) and gives no clean-up of its own gets `remove_owned`.
Create places files into directories that may have existed before (/etc/kubernetes, /etc/etcd)
and may hold other things, so this removes only the files and trees the phase owns, then the
directories it made, and those only when nothing else is left in them. One probe per host
says what is there; only what is present becomes an operation, so a second delete (or one run
after an interrupted delete) reports nothing to change.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyinfra.operations import server, systemd

from provisioner.phases.context import ClusterContext
from provisioner.phases.owned import HostShare, Owned, Unit, deepest_first
from provisioner.workflow import Phase, Plan
from provisioner.workflow.phase import PlanFunction

RELOAD = "systemd reload"


@dataclass(frozen=True)
class Removals:
    """What create put on one host: files, whole trees, and directories to remove if empty."""

    files: tuple[str, ...]
    trees: tuple[str, ...]
    directories: tuple[str, ...]  # deepest first
    units: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class Step:
    description: str
    command: str


@dataclass
class RemovalPlan:
    """What delete does on one host, given what the probe found there."""

    stop_units: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def unit_removed(self) -> bool:
        return bool(self.stop_units)


def removals(share: HostShare) -> Removals:
    """A host share as removals: unit files first (so units stop before their data goes).
    What lies inside a data directory (the kubelet's serving pair in /var/lib/kubelet/pki)
    goes with it."""
    def inside_tree(path: str) -> bool:
        return any(path.startswith(f"{tree}/") for tree in share.data_dirs)

    return Removals(tuple(p for p in share.paths if not inside_tree(p)), share.data_dirs,
                    tuple(d for d in share.directories if not inside_tree(d)), share.units)


def merged(many: Iterable[Removals]) -> Removals:
    """Every path of several hosts' removals (for one probe that serves them all)."""
    many = list(many)
    return Removals(
        tuple(dict.fromkeys(f for r in many for f in r.files)),
        tuple(dict.fromkeys(t for r in many for t in r.trees)),
        tuple(deepest_first({d for r in many for d in r.directories})),
        tuple(dict.fromkeys(u for r in many for u in r.units)),
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


def removal_plan(removals: Removals, probe_output: str) -> RemovalPlan:
    """The steps that remove what is present; a directory only if nothing else is in it."""
    present: set[str] = set()
    entries: dict[str, set[str]] = {d: set() for d in removals.directories}
    for line in probe_output.splitlines():
        kind, _, path = line.partition(" ")
        if kind == "present":
            present.add(path)
        elif kind == "entry":
            entries.setdefault(posixpath.dirname(path), set()).add(path)
    result = RemovalPlan(stop_units=[u.name for u in removals.units if u.path in present])
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


def remove_owned(owned: Owned) -> PlanFunction:
    """The clean-up that removes what `owned` declares from every host that has it."""

    def cleanup(ctx: ClusterContext, plan: Plan) -> None:
        spec = ctx.spec
        wanted = {host.name: removals(owned.share(spec, host)) for host in spec.hosts}
        hosts = [h for h in spec.hosts if any((wanted[h.name].files, wanted[h.name].trees,
                                                 wanted[h.name].directories))]
        if not hosts:
            return
        session = plan.session
        # One probe for every host at once; each host's plan reads only its own paths.
        found = session.run(probe_command(merged(wanted.values())), hosts)
        for host in hosts:
            steps = removal_plan(wanted[host.name], found[host.name].stdout)
            for unit in steps.stop_units:
                session.op(host, f"{unit} stopped and disabled", systemd.service,
                           service=unit, running=False, enabled=False)
            for step in steps.steps:
                session.op(host, step.description, server.shell, commands=[step.command])
            if steps.unit_removed:
                session.op(host, RELOAD, systemd.daemon_reload)

    return cleanup


def default_cleanup(phase: Phase) -> PlanFunction | None:
    """What `delete` runs for a phase with no clean-up of its own: remove what it owns."""
    return remove_owned(phase.owns) if isinstance(phase.owns, Owned) and phase.owns else None
