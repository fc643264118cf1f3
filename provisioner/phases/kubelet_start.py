"""Phase `kubelet-start`: the control-plane hosts' kubelets run, and with them the static pods.

Each kubelet reads /var/lib/kubelet/config.yaml (webhook authentication and authorization, the
cluster CA, the manifest directory, cluster DNS) and reaches the API server with kubelet.conf.
It starts the control plane from the manifests without an API server, then registers its node
once the API server it started answers. `join` starts the workers' kubelets the same way, with a
bootstrap kubeconfig instead of kubelet.conf.
"""

from __future__ import annotations

import hashlib

import yaml
from pyinfra.operations import files, server, systemd

from provisioner.kube.kubeletconfig import kubelet_configuration
from provisioner.phases.context import ClusterContext
from provisioner.phases.control_plane import MANIFESTS_DIR
from provisioner.phases.kubeconfig import CLUSTER_CA, KUBELET_CONF, NODES, node_hosts
from provisioner.phases.owned import REMOTE_VENV, DataDir, File, Owned, Unit
from provisioner.phases.runtime import RUNTIME_SOCKET, installed_digests
from provisioner.phases.units import run_unit
from provisioner.pki.table import Certificate, Subject
from provisioner.spec import Host
from provisioner.templates import render
from provisioner.workflow import Phase, Plan

UNIT = Unit("kubelet.service", NODES)
KUBELET_DIR = "/var/lib/kubelet"
KUBELET_CONFIG = f"{KUBELET_DIR}/config.yaml"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

SERVING = f"{KUBELET_DIR}/pki/kubelet"  # port 10250's certificate and key, without suffix


def serving_names(subject: Subject) -> list[str]:
    """What clients reach a kubelet by: the API server and metrics-server use its address."""
    return [subject.host.name, subject.host.address]


OWNS = Owned(
    # Issued by the cluster CA on the operator and placed by `pki` (as etcd's member
    # certificates are), so the API server verifies every kubelet it proxies to
    # (--kubelet-certificate-authority) and no CA key or CSR approval is needed on a node.
    certificates=(Certificate("kubelet-serving", "ca", lambda s: f"system:node:{s.host.name}",
                              organizations=("system:nodes",), sans=serving_names,
                              usages=("server",), roles=NODES, remote=SERVING, per_host=True),),
    files=(File(KUBELET_CONFIG, NODES),),
    units=(UNIT,),
    data_dirs=(DataDir(KUBELET_DIR, NODES),),
)


def config_for(ctx: ClusterContext, host: Host) -> str:
    """The kubelet's configuration file; control-plane-only hosts register tainted."""
    spec = ctx.spec
    taints = [CONTROL_PLANE_TAINT] if host.is_control_plane and not host.is_worker else None
    return yaml.safe_dump(kubelet_configuration(
        client_ca_file=CLUSTER_CA, static_pod_path=MANIFESTS_DIR,
        service_cidr=str(spec.networking.service_cidr), dns_domain=spec.networking.dns_domain,
        register_with_taints=taints, tls_cert_file=f"{SERVING}.crt",
        tls_private_key_file=f"{SERVING}.key"), sort_keys=False)


def credentials_digest(*contents: bytes) -> str:
    """A digest of what the kubelet authenticates with: changed credentials restart it."""
    digest = hashlib.sha256()
    for content in contents:
        digest.update(content)
    return digest.hexdigest()[:16]


def configure(ctx: ClusterContext, plan: Plan, host: Host, *, bootstrap_kubeconfig: str | None,
              digest: str, venv_digest: str) -> None:
    """The kubelet's configuration and unit on `host`, running; restarted when they change."""
    session = plan.session
    session.op(host, f"directory {KUBELET_DIR}", files.directory, path=KUBELET_DIR, mode="700",
               user="root", group="root")
    config = config_for(ctx, host)
    session.put(host, f"kubelet configuration {KUBELET_CONFIG}", KUBELET_CONFIG, config,
                mode="644")
    # The unit names a digest of the configuration and credentials, so a change to either
    # changes the unit, and one condition restarts the kubelet once.
    serving = ctx.state.pki_dir / f"kubelet-serving-{host.name}.crt"
    digest = credentials_digest(digest.encode(), config.encode(),
                                serving.read_bytes() if serving.exists() else b"")
    run_unit(session, host, UNIT, render(
        "kubelet.service.j2", cluster=ctx.spec.name, venv=REMOTE_VENV, name=host.name,
        address=host.address, kubeconfig=KUBELET_CONF, bootstrap_kubeconfig=bootstrap_kubeconfig,
        config=KUBELET_CONFIG, runtime_socket=RUNTIME_SOCKET, credentials_digest=digest,
        venv_digest=venv_digest[:16]))


def plan_kubelet_start(ctx: ClusterContext, plan: Plan) -> None:
    venvs = installed_digests(plan, ctx.spec.control_plane_hosts)
    for host in ctx.spec.control_plane_hosts:
        kubeconfig = ctx.state.pki_dir / f"kubelet-client-{host.name}.crt"
        digest = credentials_digest(kubeconfig.read_bytes() if kubeconfig.exists() else b"")
        configure(ctx, plan, host, bootstrap_kubeconfig=None, digest=digest,
                  venv_digest=venvs.get(host.name, ""))


def cleanup_kubelet(ctx: ClusterContext, plan: Plan) -> None:
    """Stop the kubelet, remove its pods through the runtime and unmount their volumes, then
    remove what the kubelet owns."""
    from provisioner.phases.delete import remove_owned
    from provisioner.phases.runtime import SWEEP_NETWORK, sweep_pods_command

    present = plan.session.run(f"test -e {UNIT.path} && echo present || echo absent")
    unmount = (f"grep -o ' {KUBELET_DIR}/[^ ]*' /proc/mounts | sort -r | "
               "xargs -r -n1 umount -l")
    for host in node_hosts(ctx.spec):
        if present[host.name].stdout.strip() != "present":
            continue
        plan.session.op(host, f"{UNIT.name} stopped", systemd.service, service=UNIT.name,
                        running=False)
        plan.session.op(host, "remove pods, their volumes and the pod network", server.shell,
                        commands=[f"{sweep_pods_command()}\n{unmount}\n{SWEEP_NETWORK}"])
    remove_owned(OWNS)(ctx, plan)


PHASE = Phase("kubelet-start", "starting the kubelet on control-plane hosts", plan_kubelet_start,
              # every node: delete stops the workers' kubelets too (they are joined by `join`)
              owns=OWNS, run_if=lambda ctx: bool(node_hosts(ctx.spec)),
              hosts=lambda ctx: node_hosts(ctx.spec), cleanup=cleanup_kubelet)
