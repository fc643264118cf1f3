"""Phase `mark-control-plane`: control-plane nodes carry kubeadm's role label and taint.

`node-role.kubernetes.io/control-plane` as a label on every control-plane node (a kubelet may not
set it on itself: NodeRestriction forbids node-role labels) and as a NoSchedule taint on those
that are not also workers, so workloads land on workers. Waits for the nodes to register first.
"""

from __future__ import annotations

from provisioner.kube.apiclient import ApiError
from provisioner.phases.apiobjects import CLUSTER
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import admin_client
from provisioner.spec import Host
from provisioner.workflow import Phase, Plan

ROLE = "node-role.kubernetes.io/control-plane"
TAINT = {"key": ROLE, "effect": "NoSchedule"}
REGISTER_TIMEOUT_SECONDS = 120


def wanted_patch(node: dict, host: Host) -> dict | None:
    """The merge patch `node` needs (None: it is already marked)."""
    patch: dict = {}
    if ROLE not in (node["metadata"].get("labels") or {}):
        patch["metadata"] = {"labels": {ROLE: ""}}
    taints = list(node.get("spec", {}).get("taints") or [])
    has_taint = any(t.get("key") == ROLE and t.get("effect") == "NoSchedule" for t in taints)
    if not host.is_worker and not has_taint:
        patch["spec"] = {"taints": taints + [TAINT]}
    return patch or None


def mark(ctx: ClusterContext) -> dict[str, list[str]]:
    client = admin_client(ctx)
    changes = []
    for host in ctx.spec.control_plane_hosts:
        node = client.wait_for(f"node {host.name} to register", lambda h=host: client.get(
            f"/api/v1/nodes/{h.name}"), timeout=REGISTER_TIMEOUT_SECONDS)
        patch = wanted_patch(node, host)
        if patch:
            client.request("PATCH", f"/api/v1/nodes/{host.name}", patch,
                           content_type="application/merge-patch+json")
            changes.append(f"marked node {host.name} as control plane")
    return {CLUSTER: changes} if changes else {}


def unmarked(ctx: ClusterContext) -> list[Host]:
    """The control-plane hosts whose nodes are missing or not yet marked (all when the API
    server does not answer yet)."""
    try:
        client = admin_client(ctx, timeout=5)
        nodes = {h.name: client.get(f"/api/v1/nodes/{h.name}") for h in ctx.spec.control_plane_hosts}
    except (ApiError, OSError):
        return list(ctx.spec.control_plane_hosts)
    return [h for h in ctx.spec.control_plane_hosts
            if nodes[h.name] is None or wanted_patch(nodes[h.name], h)]


def plan_mark(ctx: ClusterContext, plan: Plan) -> None:
    todo = unmarked(ctx)
    if todo:
        plan.then(lambda: mark(ctx), would=[(CLUSTER, f"mark node {h.name} as control plane")
                                            for h in todo], title="marking control-plane nodes")


PHASE = Phase("mark-control-plane", "marking the control-plane nodes", plan_mark,
              run_if=lambda ctx: bool(ctx.spec.control_plane_hosts), hosts=lambda ctx: [])
