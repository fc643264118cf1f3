"""`delete cluster`: stop and remove everything `create cluster` put on the hosts.

Units are stopped and disabled first, then files, data and the virtualenv go. Each step is an
idempotent pyinfra operation, so a delete that was interrupted can simply be run again.
"""

from __future__ import annotations

from pyinfra.operations import files, systemd

from provisioner.phases.context import (
    ETCD_UNIT,
    ETCD_UNIT_PATH,
    REMOTE_ETCD_CONFIG,
    REMOTE_PKI,
    REMOTE_ROOT,
    ClusterContext,
)
from provisioner.workflow import Phase, PhaseOutcome

UNITS = [(ETCD_UNIT, ETCD_UNIT_PATH)]


def run(ctx: ClusterContext) -> PhaseOutcome:
    outcome = PhaseOutcome()
    spec = ctx.spec
    with ctx.session() as session:
        for host in spec.hosts:
            removed_units = []
            for unit, path in UNITS:
                exists = session.run_one(host, f"test -e {path} && echo yes || echo no").stdout.strip() == "yes"
                if exists:
                    session.op(host, f"{unit} stopped and disabled", systemd.service,
                               service=unit, running=False, enabled=False)
                removed_units.append(
                    session.op(host, f"unit file {path} removed", files.file, path=path, present=False)
                )
            session.op(host, "systemd reload", systemd.daemon_reload,
                       _if=lambda units=removed_units: any(u.did_change() for u in units))
            for directory in (REMOTE_PKI, "/etc/kubernetes", REMOTE_ETCD_CONFIG, spec.etcd.data_dir, REMOTE_ROOT):
                session.op(host, f"{directory} removed", files.directory, path=directory, present=False)
        changes = session.preview() if ctx.dry_run else session.apply()
    for host, descriptions in changes.by_host.items():
        for description in descriptions:
            if description != "systemd reload":
                outcome.add(host, description)
    return outcome


PHASE = Phase("delete", "removing what create installed from every host", run)
