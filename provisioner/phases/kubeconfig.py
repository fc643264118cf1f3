"""Phase `kubeconfig`: the control plane's kubeconfig files, as kubeadm writes them.

admin.conf and super-admin.conf for operators on control-plane hosts, controller-manager.conf and
scheduler.conf for the components (each pointing at its own host's API server), kubelet.conf for
the control-plane hosts' kubelets (system:node:<host>; workers get theirs through TLS bootstrap
in `join`). Each embeds a client certificate of the table, issued by `pki`; all are 0600 and never
shown. The operator's own admin.conf lands in the cluster's local state.

Other phases reach the cluster through `admin_client(ctx)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provisioner.engine.archive import FileContent
from provisioner.kube.apiclient import ApiClient, Credentials
from provisioner.phases.context import ClusterContext
from provisioner.phases.owned import REMOTE_PKI, File, Owned
from provisioner.pki.cluster import load_pair
from provisioner.pki.kubeconfig import render_kubeconfig, write_kubeconfig
from provisioner.pki.table import Certificate
from provisioner.spec import ClusterSpec, Host
from provisioner.workflow import Phase, Plan

KUBERNETES_DIR = "/etc/kubernetes"
APISERVER_PORT = 6443
CONTROL_PLANE = ("control-plane",)
NODES = ("control-plane", "worker")   # hosts that run a kubelet


def node_hosts(spec: ClusterSpec) -> list[Host]:
    """The hosts that run a kubelet (and so a container runtime)."""
    return [h for h in spec.hosts if h.is_control_plane or h.is_worker]
CLUSTER_CA = f"{REMOTE_PKI}/ca.crt"


def api_endpoint(spec: ClusterSpec) -> str:
    """Where clients outside the control plane reach the API: the first control-plane host."""
    return f"https://{spec.control_plane_hosts[0].address}:{APISERVER_PORT}"


def local_endpoint(spec: ClusterSpec, host: Host) -> str:
    """The API server on `host` itself, as kubeadm points its components at it."""
    return f"https://{host.address}:{APISERVER_PORT}"


@dataclass(frozen=True)
class Kubeconfig:
    """One kubeconfig file: where, whose certificate, which API server."""

    path: str
    certificate: str                      # the table row (per-host rows: `name`-<host>)
    user: str
    server: Callable[[ClusterSpec, Host], str]
    per_host: bool = False


KUBECONFIGS = (
    Kubeconfig(f"{KUBERNETES_DIR}/admin.conf", "admin", "kubernetes-admin",
               lambda spec, _host: api_endpoint(spec)),
    Kubeconfig(f"{KUBERNETES_DIR}/super-admin.conf", "super-admin", "kubernetes-super-admin",
               lambda spec, _host: api_endpoint(spec)),
    Kubeconfig(f"{KUBERNETES_DIR}/controller-manager.conf", "controller-manager",
               "system:kube-controller-manager", local_endpoint),
    Kubeconfig(f"{KUBERNETES_DIR}/scheduler.conf", "scheduler", "system:kube-scheduler",
               local_endpoint),
    Kubeconfig(f"{KUBERNETES_DIR}/kubelet.conf", "kubelet-client", "system:node",
               lambda spec, _host: api_endpoint(spec), per_host=True),
)
ADMIN_CONF, SUPER_ADMIN_CONF, CONTROLLER_MANAGER_CONF, SCHEDULER_CONF, KUBELET_CONF = (
    k.path for k in KUBECONFIGS)

OWNS = Owned(
    certificates=(
        Certificate("super-admin", "ca", "kubernetes-super-admin",
                    organizations=("system:masters",)),
        Certificate("controller-manager", "ca", "system:kube-controller-manager"),
        Certificate("scheduler", "ca", "system:kube-scheduler"),
        # Control-plane kubelets start before any controller could sign a CSR for them.
        Certificate("kubelet-client", "ca", lambda s: f"system:node:{s.host.name}",
                    organizations=("system:nodes",), roles=CONTROL_PLANE, per_host=True),
    ),
    # kubelet.conf is on every node: placed here on control-plane hosts, written by the kubelet
    # itself after TLS bootstrap on workers (`join`).
    files=tuple(File(k.path, NODES if k.path == KUBELET_CONF else CONTROL_PLANE, mode="600",
                     secret=True) for k in KUBECONFIGS),
)


def render(ctx: ClusterContext, kubeconfig: Kubeconfig, host: Host) -> str:
    name = f"{kubeconfig.certificate}-{host.name}" if kubeconfig.per_host else kubeconfig.certificate
    user = f"system:node:{host.name}" if kubeconfig.per_host else kubeconfig.user
    return render_kubeconfig(cluster_name=ctx.spec.name, server=kubeconfig.server(ctx.spec, host),
                             ca_pem=(ctx.state.pki_dir / "ca.crt").read_bytes(), user=user,
                             client=load_pair(ctx.state.pki_dir, name))


def admin_kubeconfig(ctx: ClusterContext) -> str:
    """The operator's admin.conf: the admin certificate, the first control-plane endpoint."""
    return render(ctx, KUBECONFIGS[0], ctx.spec.control_plane_hosts[0])


def admin_client(ctx: ClusterContext, timeout: float = 15) -> ApiClient:
    """The run's client with the admin credentials (one per timeout: its connections stay open)."""
    pki = ctx.state.pki_dir
    credentials = Credentials(api_endpoint(ctx.spec), str(pki / "ca.crt"), str(pki / "admin.crt"),
                              str(pki / "admin.key"))
    key = (credentials, timeout)
    if key not in ctx.api_clients:
        ctx.api_clients[key] = ApiClient(credentials, timeout=timeout)
    return ctx.api_clients[key]


def _issued(ctx: ClusterContext) -> bool:
    return (ctx.state.pki_dir / "ca.crt").exists() and (ctx.state.pki_dir / "admin.crt").exists()


def write_local_admin(ctx: ClusterContext) -> dict[str, list[str]] | None:
    content = admin_kubeconfig(ctx)
    path = ctx.state.admin_kubeconfig
    if path.exists() and path.read_text() == content:
        return None
    write_kubeconfig(path, content)
    return {"local": [f"wrote {path}"]}


def plan_kubeconfigs(ctx: ClusterContext, plan: Plan) -> None:
    hosts = ctx.spec.control_plane_hosts
    if not hosts:  # workers alone (a worker being removed): nothing to write
        return
    if not _issued(ctx):  # a dry run before the first pki: nothing to render yet
        for host in hosts:
            for kubeconfig in KUBECONFIGS:
                plan.would(host.name, f"kubeconfig {kubeconfig.path}")
        plan.would("local", f"write {ctx.state.admin_kubeconfig}")
        return
    # Secrets, so never shown or diffed: one probe and at most one archive per host
    differing = plan.session.files_differing({host.name: [
        FileContent(k.path, render(ctx, k, host).encode(), "600") for k in KUBECONFIGS]
        for host in hosts})
    changes = {name: [f"kubeconfig {f.path}" for f in placed] for name, placed in differing.items()}

    def write() -> dict[str, list[str]]:
        # /etc/kubernetes keeps its mode: only the files are private
        plan.session.place_files(differing, "kubeconfig files", private_dirs=False)
        return changes

    if differing:
        plan.then(write, would=[(name, change) for name, listed in changes.items() for change in listed])
    plan.then(lambda: write_local_admin(ctx), would=[("local", f"write {ctx.state.admin_kubeconfig}")]
              if not ctx.state.admin_kubeconfig.exists() else [])


PHASE = Phase("kubeconfig", "writing the control plane's kubeconfig files", plan_kubeconfigs,
              # every node: delete removes kubelet.conf from workers too
              owns=OWNS, run_if=lambda ctx: bool(node_hosts(ctx.spec)),
              hosts=lambda ctx: node_hosts(ctx.spec))
