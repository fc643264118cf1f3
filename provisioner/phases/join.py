"""Phase `join`: workers join through the bootstrap token and TLS bootstrap.

Each worker gets the cluster CA and a bootstrap kubeconfig holding the token; its kubelet files
a CertificateSigningRequest as `system:bootstrap:<id>`, the controller manager approves and signs
it, and the kubelet writes its own kubelet.conf. No CA key and no node certificate from the
operator ever reach a worker. Waits until every worker's node has registered.
"""

from __future__ import annotations

from provisioner.phases.bootstrap_token import current_token
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import KUBERNETES_DIR, admin_client, api_endpoint
from provisioner.phases.kubelet_start import configure, credentials_digest
from provisioner.phases.owned import File, Owned
from provisioner.phases.runtime import installed_digests
from provisioner.pki.kubeconfig import render_kubeconfig
from provisioner.pki.table import JOINING, has_role
from provisioner.spec import ClusterSpec, Host
from provisioner.workflow import Phase, Plan

BOOTSTRAP_KUBELET_CONF = f"{KUBERNETES_DIR}/bootstrap-kubelet.conf"
REGISTER_TIMEOUT_SECONDS = 180

# kubelet.conf, which a joined kubelet writes itself, is declared by `kubeconfig` for every node.
OWNS = Owned(files=(File(BOOTSTRAP_KUBELET_CONF, (JOINING,), mode="600", secret=True),))


def joining_hosts(spec: ClusterSpec) -> list[Host]:
    """Workers that are not control-plane hosts (those have kubelet.conf from `kubeconfig`)."""
    return [h for h in spec.hosts if has_role(h, (JOINING,))]


def bootstrap_kubeconfig(ctx: ClusterContext) -> str:
    return render_kubeconfig(cluster_name=ctx.spec.name, server=api_endpoint(ctx.spec),
                             ca_pem=(ctx.state.pki_dir / "ca.crt").read_bytes(),
                             user="tls-bootstrap-token-user", token=current_token(ctx).value)


def wait_registered(ctx: ClusterContext, hosts: list[Host]) -> None:
    client = admin_client(ctx)
    for host in hosts:
        client.wait_for(f"node {host.name} to register (TLS bootstrap through a CSR); see "
                        f"`journalctl -u kubelet` on {host.name}",
                        lambda h=host: client.get(f"/api/v1/nodes/{h.name}"),
                        timeout=REGISTER_TIMEOUT_SECONDS)


def plan_join(ctx: ClusterContext, plan: Plan) -> None:
    hosts = joining_hosts(ctx.spec)
    if not (ctx.state.pki_dir / "ca.crt").exists():  # a dry run of a new cluster
        for host in hosts:
            plan.would(host.name, "join the cluster through the bootstrap token")
        return
    content = bootstrap_kubeconfig(ctx)
    venvs = installed_digests(plan, hosts)
    for host in hosts:
        plan.session.put(host, f"bootstrap kubeconfig {BOOTSTRAP_KUBELET_CONF}",
                         BOOTSTRAP_KUBELET_CONF, content, mode="600", show=False)
        configure(ctx, plan, host, bootstrap_kubeconfig=BOOTSTRAP_KUBELET_CONF,
                  digest=credentials_digest(b"bootstrap"), venv_digest=venvs.get(host.name, ""))
    plan.then(lambda: wait_registered(ctx, hosts), title="waiting for workers to register")


PHASE = Phase("join", "joining workers through TLS bootstrap", plan_join, owns=OWNS,
              run_if=lambda ctx: bool(joining_hosts(ctx.spec)),
              hosts=lambda ctx: joining_hosts(ctx.spec))
