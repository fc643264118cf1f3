"""The node lifecycle controller: nodes whose kubelet went quiet become Ready=Unknown, and the
not-ready/unreachable taints follow the Ready condition.

Heartbeats are a node's Lease in kube-node-lease being renewed or its status changing, timed on
this process's own clock (as upstream: no comparison of timestamps across hosts). After
--node-monitor-grace-period without one, every kubelet condition is set Unknown
("Kubelet stopped posting node status."; "...never posted..." for a node that never reported).
Taints: Ready=False -> node.kubernetes.io/not-ready, Ready=Unknown -> node.kubernetes.io/unreachable,
each NoExecute (with timeAdded) and NoSchedule; spec.unschedulable -> node.kubernetes.io/unschedulable.
Pods on a node that went Unknown are marked not Ready (so endpoints stop sending them traffic), as
upstream's MarkPodsNotReady. Evicting pods from NoExecute-tainted nodes is the taint eviction
controller's job (tainteviction.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
MANAGED = {NOT_READY, UNREACHABLE, UNSCHEDULABLE}


def ready_status(node: Obj) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return None


def desired_taints(node: Obj, now: str) -> list[Obj]:
    """The node's taints with the managed ones made to match its Ready condition; timeAdded kept
    for taints already there."""
    current = (node.get("spec") or {}).get("taints") or []
    keep = [t for t in current if t.get("key") not in MANAGED]
    want: list[tuple[str, str]] = []
    ready = ready_status(node)
    if ready == "False":
        want += [(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]
    elif ready == "Unknown":
        want += [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    if (node.get("spec") or {}).get("unschedulable"):
        want.append((UNSCHEDULABLE, "NoSchedule"))
    for key, effect in want:
        prior = next((t for t in current if t.get("key") == key and t.get("effect") == effect), None)
        taint = {"key": key, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = (prior or {}).get("timeAdded") or now
        keep.append(taint)
    return keep


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """Conditions with the kubelet's set Unknown, or None if they already are."""
    conds = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    never = not any(c.get("type") == "Ready" for c in conds)
    reason, message = ("NodeStatusNeverUpdated", "Kubelet never posted node status.") if never else \
        ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    changed = False
    for ctype in KUBELET_CONDITIONS:
        c = next((c for c in conds if c.get("type") == ctype), None)
        if c is None:
            conds.append({"type": ctype, "status": "Unknown", "reason": reason, "message": message,
                          "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                          "lastTransitionTime": now})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", reason=reason, message=message, lastTransitionTime=now)
            changed = True
    return conds if changed else None


def _same_taints(a: list[Obj], b: list[Obj]) -> bool:
    def key(t: Obj) -> tuple:
        return (t.get("key"), t.get("value"), t.get("effect"))
    return sorted(map(key, a)) == sorted(map(key, b))


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def setup(self) -> None:
        self.grace = self.ctx.options.node_monitor_grace_period
        self.period = self.ctx.options.node_monitor_period
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.leases = self.ctx.informer("coordination.k8s.io", "v1", "leases")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.heard: dict[str, float] = {}  # node -> loop time of its last heartbeat
        self.nodes.add_handler(self._node_added, self._node_updated, lambda n: self.heard.pop(n["metadata"]["name"], None))
        self.leases.add_handler(self._lease, lambda old, new: self._lease(new, old))

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _node_added(self, node: Obj) -> None:
        self.heard.setdefault(node["metadata"]["name"], self._now())
        self.enqueue(node)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if self._heartbeat(old) != self._heartbeat(new):
            self.heard[new["metadata"]["name"]] = self._now()
        self.enqueue(new)

    @staticmethod
    def _heartbeat(node: Obj) -> tuple:
        return tuple((c.get("type"), c.get("status"), c.get("lastHeartbeatTime"))
                     for c in (node.get("status") or {}).get("conditions") or [])

    def _lease(self, lease: Obj, old: Obj | None = None) -> None:
        if lease["metadata"].get("namespace") != "kube-node-lease":
            return
        renew = (lease.get("spec") or {}).get("renewTime")
        if old is None or renew != (old.get("spec") or {}).get("renewTime"):
            self.heard[lease["metadata"]["name"]] = self._now()

    async def run(self) -> None:
        monitor = asyncio.ensure_future(self._monitor())
        try:
            await super().run()
        finally:
            monitor.cancel()

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            for node in self.nodes.list():
                self.enqueue(node)

    async def _mark_pods_not_ready(self, node: str, now: str) -> None:
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node or not podutil.is_ready(pod):
                continue
            conds = [dict(c, status="False", lastTransitionTime=now) if c.get("type") == "Ready" else c
                     for c in (pod.get("status") or {}).get("conditions") or []]
            try:
                await self.api.patch("", "v1", "pods", pod["metadata"]["name"],
                                     {"metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
                                      "status": {"conditions": conds}}, pod["metadata"]["namespace"], sub="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        now = podutil.rfc3339(podutil.utcnow())
        quiet = self._now() - self.heard.setdefault(key, self._now())
        if quiet > self.grace:
            conds = unknown_conditions(node, now)
            if conds is not None:
                body = dict(node, status=dict(node.get("status") or {}, conditions=conds))
                try:
                    node = await self.api.replace("", "v1", "nodes", body, sub="status")
                except ApiStatusError as exc:
                    if exc.code in (404, 409):
                        return
                    raise
                self.ctx.event(node, "Normal", "NodeNotReady", f"Node {key} status is now: NodeNotReady")
        if ready_status(node) == "Unknown":
            await self._mark_pods_not_ready(key, now)
        taints = desired_taints(node, now)
        if not _same_taints(taints, (node.get("spec") or {}).get("taints") or []):
            body = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                    "spec": {"taints": taints or None}}
            try:
                await self.api.patch("", "v1", "nodes", key, body)
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                raise  # 409: the node changed under us; the retry reads it again
