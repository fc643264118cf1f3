"""How a phase runs a systemd unit it renders (etcd, the container runtime, the kubelet, the
registry): the unit file placed, systemd reloaded and the unit restarted when the file changed,
and the unit kept running and enabled. A unit names digests of what its daemon reads at start
(certificates, configuration, the virtualenv), so a change to any of them is a changed unit file
and restarts it."""

from __future__ import annotations

from typing import Any

from pyinfra.operations import systemd

from provisioner.phases.owned import Unit


def run_unit(session: Any, host: Any, unit: Unit, content: str) -> Any:
    """The operations for `unit` with `content` on `host`; returns the placed unit file."""
    placed = session.put(host, f"unit {unit.name}", unit.path, content, mode="644")
    session.op(host, "systemd reload", systemd.daemon_reload, _if=placed.did_change)
    # Restart before ensuring it runs: pyinfra restarts only a unit that was already running,
    # so a unit started for the first time is started once, not started and restarted.
    session.op(host, f"{unit.name} restarted for its new configuration", systemd.service,
               service=unit.name, running=None, restarted=True, _if=placed.did_change)
    session.op(host, f"{unit.name} running and enabled", systemd.service, service=unit.name,
               running=True, enabled=True)
    return placed
