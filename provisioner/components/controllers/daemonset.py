"""The daemonset controller: one pod on every eligible node, rolled when the template changes.

A node is eligible when the template's nodeSelector and required node affinity match it and the
pod (with the tolerations every DaemonSet pod gets) tolerates its NoSchedule/NoExecute taints.
As upstream since 1.12, pods are placed by the scheduler: each carries required node affinity
on `metadata.name` for its node (matchFields), so the scheduler's filters still apply.
RollingUpdate replaces pods whose `controller-revision-hash` differs, at most maxUnavailable
nodes at a time (or maxSurge nodes with a second pod); OnDelete waits for the user to delete them.

Each template is kept as a ControllerRevision (history.py) for `kubectl rollout history|undo ds`.
With maxSurge the new pod starts beside the old one and the old one goes once the new is available.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import history, podutil, rollout
from .base import Controller, split_key

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


# -- pure decisions ---------------------------------------------------------------------------
def _expr_matches(expr: Obj, values: dict[str, str]) -> bool:
    key, op, vals = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op in ("In", "NotIn", "Exists", "DoesNotExist"):
        return podutil.selector_matches({"matchExpressions": [expr]}, values)
    if op in ("Gt", "Lt") and key in values and vals:
        try:
            a, b = int(values[key]), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    exprs, fexprs = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fexprs:
        return False
    return all(_expr_matches(e, labels) for e in exprs) and all(_expr_matches(e, fields) for e in fexprs)


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def daemon_tolerations(pod_spec: Obj) -> list[Obj]:
    out = list(pod_spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in out):
            out.append(dict(t))
    return out


def should_run(ds: Obj, node: Obj) -> bool:
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if terms is not None and not any(node_selector_term_matches(t, node) for t in terms):
        return False
    tolerations = daemon_tolerations(spec)
    return all(tolerates(tolerations, t) for t in (node.get("spec") or {}).get("taints") or []
               if t.get("effect") in ("NoSchedule", "NoExecute"))


def node_of(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, else its matchFields affinity."""
    if (pod.get("spec") or {}).get("nodeName"):
        return pod["spec"]["nodeName"]
    terms = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def pod_for_node(ds: Obj, node_name: str, template_hash: str) -> Obj:
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    pod = podutil.pod_from_template(template, ds, "apps/v1", "DaemonSet")
    pod["metadata"]["labels"][HASH_LABEL] = template_hash
    pod["metadata"]["labels"][GENERATION_LABEL] = str(ds["metadata"].get("generation", 1))
    spec = pod["spec"]
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    terms = required.get("nodeSelectorTerms") or [{}]
    # replace any metadata.name field term; keep the user's label expressions in each term
    required["nodeSelectorTerms"] = [dict(t, matchFields=[f for f in t.get("matchFields") or []
                                                           if f.get("key") != "metadata.name"] + [field])
                                     for t in terms]
    return pod


def ds_hash(ds: Obj) -> str:
    return rollout.template_hash((ds.get("spec") or {}).get("template") or {},
                                 int((ds.get("status") or {}).get("collisionCount") or 0))


def max_unavailable(ds: Obj, desired: int) -> int:
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rollout.scaled_value(ru.get("maxUnavailable", 1), desired, False)
    return max(1, value) if desired else 0


def max_surge(ds: Obj, desired: int) -> int:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return rollout.scaled_value((strategy.get("rollingUpdate") or {}).get("maxSurge", 0), desired, True)


def surge_plan(ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str], h: str, surge: int,
               now: Any) -> tuple[list[str], list[Obj]]:
    """RollingUpdate with maxSurge: a node's new pod starts beside the old one (at most `surge`
    nodes at a time); the old one goes once the new one is available."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)

    def oldest_first(ps: list[Obj]) -> list[Obj]:
        return sorted(ps, key=lambda p: p["metadata"].get("creationTimestamp") or "")
    create: list[str] = []
    delete: list[Obj] = []
    waiting: list[str] = []
    surging = 0
    for node in sorted(eligible):
        running = [p for p in by_node.get(node, []) if not podutil.is_terminating(p)]
        if not running:
            if not by_node.get(node):
                create.append(node)
            continue
        new = oldest_first([p for p in running if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == h])
        old = oldest_first([p for p in running if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != h])
        delete += new[1:]
        if new and old:
            if podutil.is_available(new[0], min_ready, now):
                delete += old
            else:
                surging += 1
                delete += old[1:]
        elif old:
            delete += old[1:]
            waiting.append(node)
    create += waiting[:max(0, surge - surging)]
    return create, delete


# -- the controller -------------------------------------------------------------------------------
class DaemonSetController(Controller):
    name = "daemonset"
    requires = (("apps", "v1", "daemonsets"), ("apps", "v1", "controllerrevisions"))

    def setup(self) -> None:
        self.daemonsets = self.ctx.informer("apps", "v1", "daemonsets")
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.revisions = self.ctx.informer("apps", "v1", "controllerrevisions")
        self.pending: dict[str, tuple[set[str], float]] = {}  # ds key -> pods created, not yet seen
        self.enqueue_all(self.daemonsets)
        self.nodes.add_handler(self._all, lambda _o, _n: self._all(), lambda _n: self._all())
        self.pods.add_handler(self._pod, lambda _o, n: self._pod(n), self._pod)

    def _all(self, *_: Any) -> None:
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    def _pod(self, pod: Obj) -> None:
        ref = podutil.controller_ref(pod)
        if ref is not None and ref.get("kind") == "DaemonSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.pending.pop(key, None)
            return
        ns, _ = split_key(key)
        if key in self.pending:
            names, since = self.pending[key]
            names = {n for n in names if self.pods.get(f"{ns}/{n}") is None}
            if names and time.monotonic() - since < 300:
                self.pending[key] = (names, since)
                self.queue.add_after(key, 0.2)
                return
            self.pending.pop(key)
        pods = [p for p in self.pods.by_index("namespace", ns or "") if podutil.owned_by(p, ds)]
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                by_node.setdefault(node_of(p) or "", []).append(p)
        h = ds_hash(ds)
        if not podutil.is_terminating(ds):
            await history.sync_history(self.api, self.revisions, ds, "DaemonSet", h,
                                       {(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in pods})
        nodes = self.nodes.list()
        eligible = {n["metadata"]["name"] for n in nodes if should_run(ds, n)}
        create, delete = [], []
        if not podutil.is_terminating(ds):
            surge = max_surge(ds, len(eligible))
            if surge:
                create, delete = surge_plan(ds, by_node, eligible, h, surge, podutil.utcnow())
            else:
                for node in sorted(eligible):
                    running = [p for p in by_node.get(node, []) if not podutil.is_terminating(p)]
                    if not running and not by_node.get(node):
                        create.append(node)
                    elif len(running) > 1:  # keep the oldest
                        running.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
                        delete += running[1:]
                delete += self._rolling_deletions(ds, by_node, eligible, h)
            for node, ps in by_node.items():
                if node not in eligible:
                    delete += [p for p in ps if not podutil.is_terminating(p)]
        await self._apply(key, ds, create, delete, h)
        await self._status(ds, by_node, eligible, h)

    def _rolling_deletions(self, ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str], h: str) -> list[Obj]:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = podutil.utcnow()
        old, unavailable = [], 0
        for node in eligible:
            ps = [p for p in by_node.get(node, []) if not podutil.is_terminating(p)]
            if not ps or not any(podutil.is_available(p, min_ready, now) for p in ps):
                unavailable += 1
            old += [p for p in ps if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != h]
        budget = max_unavailable(ds, len(eligible)) - unavailable
        # unavailable old pods first: replacing them costs no availability
        old.sort(key=lambda p: podutil.is_available(p, min_ready, now))
        out = [p for p in old if not podutil.is_available(p, min_ready, now)]
        for p in old:
            if budget <= 0:
                break
            if podutil.is_available(p, min_ready, now):
                out.append(p)
                budget -= 1
        return out

    async def _apply(self, key: str, ds: Obj, create: list[str], delete: list[Obj], h: str) -> None:
        ns = ds["metadata"]["namespace"]
        if create:
            results = await asyncio.gather(*(self.api.create("", "v1", "pods", pod_for_node(ds, n, h), ns)
                                             for n in create), return_exceptions=True)
            made = {r["metadata"]["name"] for r in results if isinstance(r, dict)}
            if made:
                self.pending[key] = (made, time.monotonic())
            for r in results:
                if isinstance(r, dict):
                    self.ctx.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                self.ctx.event(ds, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
                raise errors[0]
        for pod in delete:
            try:
                await self.api.delete("", "v1", "pods", pod["metadata"]["name"], ns, uid=pod["metadata"]["uid"])
                self.ctx.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise

    async def _status(self, ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str], h: str) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = podutil.utcnow()
        current = [n for n in eligible if by_node.get(n)]
        ready = [n for n in current if any(podutil.is_ready(p) for p in by_node[n])]
        available = [n for n in current if any(podutil.is_available(p, min_ready, now) for p in by_node[n])]
        updated = [n for n in current if any((p["metadata"].get("labels") or {}).get(HASH_LABEL) == h
                                             for p in by_node[n])]
        status = {
            "currentNumberScheduled": len(current),
            "numberMisscheduled": len([n for n in by_node if n not in eligible and n]),
            "desiredNumberScheduled": len(eligible),
            "numberReady": len(ready),
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": len(updated),
            "numberAvailable": len(available),
            "numberUnavailable": len(eligible) - len(available),
        }
        old = ds.get("status") or {}
        if any(old.get(k, 0) != v for k, v in status.items()):
            body = dict(ds, status=dict(old, **status))
            try:
                await self.api.replace("apps", "v1", "daemonsets", body, ds["metadata"]["namespace"], sub="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        if min_ready and len(ready) > len(available):
            self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}", min_ready)
