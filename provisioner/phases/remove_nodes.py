"""Phase `remove-nodes`: workers taken out of the spec leave the cluster cleanly.

The running cluster's spec (`kube-system/provisioner-config`) says which workers it had. A
worker no longer in the spec is cordoned and drained through the eviction API (so
PodDisruptionBudgets are honoured: an eviction they forbid is retried until a deadline, then
the phase stops and names the pods), its Node is deleted, and the host is cleaned by the same
clean-ups `delete cluster` runs, as if the cluster were that one host. Control-plane and etcd
hosts are not removed this way: shrinking a control plane or etcd needs its own procedure.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from provisioner.errors import ProvisionerError
from provisioner.kube.apiclient import ApiClient, ApiError
from provisioner.phases.apiobjects import CLUSTER
from provisioner.phases.context import ClusterContext
from provisioner.phases.immutable import uploaded_spec
from provisioner.phases.kubeconfig import admin_client
from provisioner.spec import Host
from provisioner.workflow import Phase, Plan

DRAIN_TIMEOUT_SECONDS = 180


def removed_workers(ctx: ClusterContext, uploaded: dict | None) -> list[Host]:
    """Workers of the running cluster that the spec no longer names (as Host records with the
    spec's SSH settings)."""
    if not uploaded:
        return []
    current = {h.name for h in ctx.spec.hosts}
    ssh = ctx.spec.hosts[0].ssh
    gone = []
    for entry in uploaded.get("spec", {}).get("hosts", []):
        roles = tuple(entry.get("roles") or ())
        if entry.get("name") in current or "worker" not in roles:
            continue
        if "control-plane" in roles or "etcd" in roles:
            continue
        gone.append(Host(entry["name"], entry["address"], roles, ssh))
    return gone


def _evictable(pod: dict) -> bool:
    owners = pod["metadata"].get("ownerReferences") or []
    mirror = "kubernetes.io/config.mirror" in (pod["metadata"].get("annotations") or {})
    daemon = any(o.get("kind") == "DaemonSet" for o in owners)
    done = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
    return not (mirror or daemon or done)


def drain(client: ApiClient, node: str,
          report: Callable[[str], None] = lambda _line: None) -> list[str]:
    """Cordon `node` and evict its pods (DaemonSet and mirror pods stay, as kubectl drain);
    `report` hears, once per pod, that a PodDisruptionBudget makes the drain wait."""
    client.request("PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}},
                   content_type="application/merge-patch+json")
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    evicted: list[str] = []
    reported: set[str] = set()
    while True:
        pods = [p for p in client.items("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")
                if _evictable(p)]
        if not pods:
            return evicted
        blocked = []
        for pod in pods:
            meta = pod["metadata"]
            try:
                client.request("POST", f"/api/v1/namespaces/{meta['namespace']}/pods/"
                                       f"{meta['name']}/eviction", {
                                           "apiVersion": "policy/v1", "kind": "Eviction",
                                           "metadata": {"name": meta["name"],
                                                        "namespace": meta["namespace"]}})
                if f"{meta['namespace']}/{meta['name']}" not in evicted:
                    evicted.append(f"{meta['namespace']}/{meta['name']}")
            except ApiError as error:
                if error.status == 429:   # a PodDisruptionBudget forbids it for now
                    blocked.append(f"{meta['namespace']}/{meta['name']}")
                elif error.status != 404:
                    raise
        for pod in sorted(set(blocked) - reported):
            report(f"draining {node}: evicting {pod} is refused by a PodDisruptionBudget; "
                   f"retrying for up to {DRAIN_TIMEOUT_SECONDS}s")
            reported.add(pod)
        if time.monotonic() > deadline:
            raise ProvisionerError(
                f"draining node {node}: pods still running after {DRAIN_TIMEOUT_SECONDS}s"
                + (f" (evictions refused by a PodDisruptionBudget: {', '.join(blocked)})"
                   if blocked else f": {', '.join(evicted)}"))
        time.sleep(2)


def remove(ctx: ClusterContext, hosts: list[Host]) -> dict[str, list[str]]:
    from provisioner.phases import DELETE_PHASES
    from provisioner.workflow import run_phases, select_phases

    client = admin_client(ctx)
    changes: dict[str, list[str]] = {}
    for host in hosts:
        evicted = drain(client, host.name,
                        report=lambda line: ctx.printer.note(PHASE.name, line))
        changes.setdefault(CLUSTER, []).append(
            f"drained node {host.name} ({len(evicted)} pod(s) evicted)")
        # The host's own clean-up (its kubelet stops first, so it cannot register again):
        # delete's phases, for a cluster of this one host.
        alone = dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, hosts=(host,)))
        outcomes = run_phases(select_phases(DELETE_PHASES), alone, ctx.printer)
        for outcome in outcomes.values():
            for name, descriptions in outcome.changes.items():
                changes.setdefault(name, []).extend(descriptions)
        if client.delete(f"/api/v1/nodes/{host.name}"):
            changes[CLUSTER].append(f"deleted node {host.name}")
    return changes


def plan_removal(ctx: ClusterContext, plan: Plan) -> None:
    gone = removed_workers(ctx, uploaded_spec(ctx))
    if gone:
        plan.then(lambda: remove(ctx, gone),
                  would=[(CLUSTER, f"drain and delete node {h.name}, then clean {h.name}")
                         for h in gone], title="removing workers no longer in the spec")


PHASE = Phase("remove-nodes", "removing workers that left the spec", plan_removal,
              run_if=lambda ctx: bool(ctx.spec.control_plane_hosts), hosts=lambda ctx: [])
