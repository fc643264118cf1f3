"""The phases of `create cluster` and `delete cluster`, one module per phase.

`CREATE_PHASES` is the workflow, in order; it fits on one screen on purpose. A phase module
declares what it owns on hosts (`owns=Owned(...)`: certificate rows, files, directories, units,
data directories) and how it plans; adding a component is its module plus one line here.
`delete cluster` runs `DELETE_PHASES`: each phase's clean-up in reverse order. For example:

    OWNS = Owned(
        certificates=(Certificate("kubelet", "ca", lambda s: f"system:node:{s.host.name}",
                                  organizations=("system:nodes",), usages=("client",),
                                  roles=("all",), remote="/var/lib/kubelet/pki/kubelet",
                                  per_host=True),),   # issued and placed by `pki`
        files=(File("/var/lib/kubelet/config.yaml"),),
        units=(Unit("kubelet.service"),),
        data_dirs=(DataDir("/var/lib/kubelet"),),
    )

    def plan_kubelet(ctx, plan):  # reads facts, records work; never changes anything itself
        for host in ctx.spec.hosts:
            unit = plan.session.put(host, "unit kubelet.service", UNIT.path, render(...),
                                    mode="644")   # dry run: a unified diff of the unit
            plan.session.op(host, "kubelet running", systemd.service, service=UNIT.name,
                            running=True, enabled=True)
        plan.then(lambda: wait_for_nodes(ctx), title="waiting for nodes")  # after apply

    PHASE = Phase("kubelet-start", "starting the kubelet", plan_kubelet, owns=OWNS,
                  run_if=lambda ctx: bool(ctx.spec.worker_hosts))
"""

from provisioner.phases import etcd, install, pki, preflight, verify
from provisioner.phases.delete import default_cleanup
from provisioner.workflow import Phase, cleanup_phases

CREATE_PHASES: list[Phase] = [
    preflight.PHASE,  # hosts are reachable and fit: OS, python3, systemd, ports, clock, disk
    pki.PHASE,  # certificates exist locally (pki/certs) and each host holds its share (pki/place)
    install.PHASE,  # this project runs on each host from /opt/provisioner/venv
    etcd.PHASE,  # every etcd host runs a member of one TLS-only etcd cluster
    verify.PHASE,  # smoke tests pass
]

DELETE_PHASES: list[Phase] = cleanup_phases(CREATE_PHASES, default_cleanup)

__all__ = ["CREATE_PHASES", "DELETE_PHASES"]
