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

from provisioner.phases import (
    addons,
    bootstrap_token,
    control_plane,
    etcd,
    install,
    join,
    kubeconfig,
    kubelet_start,
    mark_control_plane,
    pki,
    preflight,
    registry,
    remove_nodes,
    runtime,
    upload_config,
    verify,
    wait_control_plane,
)
from provisioner.phases.delete import default_cleanup
from provisioner.workflow import Phase, cleanup_phases

CREATE_PHASES: list[Phase] = [
    preflight.PHASE,  # hosts are reachable and fit: OS, python3, systemd, ports, clock, disk
    pki.PHASE,  # certificates exist locally (pki/certs) and each host holds its share (pki/place)
    kubeconfig.PHASE,  # admin, controller-manager, scheduler and control-plane kubelet kubeconfigs
    install.PHASE,  # this project runs on each host from /opt/provisioner/venv
    etcd.PHASE,  # every etcd host runs a member of one TLS-only etcd cluster
    runtime.PHASE,  # the container runtime under systemd, CNI plugins, the components image
    registry.PHASE,  # docker-registry on the first control-plane host; every runtime trusts it
    control_plane.PHASE,  # static pods: apiserver, controller-manager, scheduler
    kubelet_start.PHASE,  # control-plane kubelets run the static pods and register their nodes
    wait_control_plane.PHASE,  # the API server answers /readyz
    remove_nodes.PHASE,  # workers gone from the spec are drained, deleted and cleaned
    upload_config.PHASE,  # the spec in kube-system/provisioner-config; kube-public/cluster-info
    bootstrap_token.PHASE,  # a join token and the RBAC for TLS bootstrap
    mark_control_plane.PHASE,  # control-plane nodes labelled (and tainted unless also workers)
    join.PHASE,  # workers join through the bootstrap token and a CSR
    addons.PHASE,  # kube-proxy, the network agent, cluster DNS
    verify.PHASE,  # smoke tests pass
]

DELETE_PHASES: list[Phase] = cleanup_phases(CREATE_PHASES, default_cleanup)

__all__ = ["CREATE_PHASES", "DELETE_PHASES"]
