"""The replicaset and replicationcontroller controllers: keep `replicas` matching pods alive.

One implementation serves both kinds (a row in WORKLOADS each: where it is served and how its
selector matches). sync() claims pods (adopts matching orphans, releases owned pods that no
longer match), creates or deletes the difference in slow-start batches, and writes status.

Never act twice: every pod created or deleted is remembered (expectations) until the pod
informer has seen it, and no further scaling happens for that object until then, so a slow
watch never makes the controller create the same pods again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
BURST_REPLICAS = 500  # at most this many creates or deletes per sync, as upstream
EXPECTATIONS_TIMEOUT = 300.0  # forget unobserved writes after this long (upstream: 5 minutes)


@dataclass(frozen=True)
class Workload:
    group: str
    version: str
    plural: str
    kind: str
    matches: Callable[[Obj, dict], bool]  # (workload, pod labels) -> selected

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


REPLICASET = Workload("apps", "v1", "replicasets", "ReplicaSet",
                      lambda rs, labels: podutil.selector_matches((rs.get("spec") or {}).get("selector"), labels))
REPLICATIONCONTROLLER = Workload(
    "", "v1", "replicationcontrollers", "ReplicationController",
    lambda rc, labels: podutil.map_selector_matches(
        (rc.get("spec") or {}).get("selector") or
        (((rc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels"), labels))


# -- pure decisions ---------------------------------------------------------------------------
def desired_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def plan_scale(desired: int, active: list[Obj]) -> tuple[int, list[Obj]]:
    """(pods to create, pods to delete) to bring `active` to `desired`, at most BURST_REPLICAS."""
    diff = len(active) - desired
    if diff < 0:
        return min(-diff, BURST_REPLICAS), []
    if diff > 0:
        return 0, sorted(active, key=podutil.deletion_rank)[:min(diff, BURST_REPLICAS)]
    return 0, []


def slow_start_batches(total: int, first: int = 1) -> list[int]:
    """Create in batches of 1, 2, 4, ... so a failing template costs one error, not hundreds."""
    out, size = [], first
    while total > 0:
        out.append(min(size, total))
        total -= out[-1]
        size *= 2
    return out


def compute_status(obj: Obj, pods: list[Obj], now: Any, failure: str | None = None) -> Obj:
    """The status a ReplicaSet/RC should carry for its claimed active pods."""
    spec = obj.get("spec") or {}
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: Obj = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if all(
            (p["metadata"].get("labels") or {}).get(k) == v for k, v in tlabels.items())),
        "readyReplicas": sum(1 for p in pods if podutil.is_ready(p)),
        "availableReplicas": sum(1 for p in pods if podutil.is_available(p, min_ready, now)),
        "observedGeneration": (obj.get("metadata") or {}).get("generation", 1),
    }
    old = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if failure:
        prev = next((c for c in (obj.get("status") or {}).get("conditions") or []
                     if c.get("type") == "ReplicaFailure"), None)
        old.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                    "message": failure,
                    "lastTransitionTime": (prev or {}).get("lastTransitionTime") or podutil.rfc3339(now)})
    if old:
        status["conditions"] = old
    return status


def status_differs(current: Obj | None, new: Obj) -> bool:
    current = current or {}
    return any(current.get(k, 0 if k != "conditions" else None) != v for k, v in new.items()) or \
        bool(current.get("conditions")) != bool(new.get("conditions"))


# -- the controller -----------------------------------------------------------------------------
@dataclass
class _Expectations:
    creates: set[str]
    deletes: set[str]
    since: float


class ReplicaSetController(Controller):
    name = "replicaset"
    workload: Workload = REPLICASET
    requires = (("apps", "v1", "replicasets"),)

    def setup(self) -> None:
        w = self.workload
        self.owners = self.ctx.informer(w.group, w.version, w.plural)
        self.pods = self.ctx.informer("", "v1", "pods")
        self.expectations: dict[str, _Expectations] = {}
        self.enqueue_all(self.owners)
        self.pods.add_handler(self._pod_changed, lambda old, new: (self._pod_changed(old),
                                                                   self._pod_changed(new)), self._pod_changed)

    def _pod_changed(self, pod: Obj) -> None:
        ref = podutil.controller_ref(pod)
        ns = pod["metadata"].get("namespace")
        if ref is not None:
            if ref.get("kind") == self.workload.kind:
                self.queue.add(f"{ns}/{ref.get('name')}")
            return
        if podutil.is_terminating(pod):
            return
        labels = pod["metadata"].get("labels") or {}
        for owner in self.owners.by_index("namespace", ns or ""):
            if self.workload.matches(owner, labels):  # an orphan to adopt
                self.enqueue(owner)

    def _satisfied(self, key: str, pods_by_name: dict[str, Obj]) -> bool:
        exp = self.expectations.get(key)
        if exp is None:
            return True
        exp.creates = {n for n in exp.creates if n not in pods_by_name}
        exp.deletes = {n for n in exp.deletes
                       if n in pods_by_name and not podutil.is_terminating(pods_by_name[n])}
        if (not exp.creates and not exp.deletes) or time.monotonic() - exp.since > EXPECTATIONS_TIMEOUT:
            del self.expectations[key]
            return True
        return False

    async def sync(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.pop(key, None)
            return
        ns, _ = split_key(key)
        in_ns = self.pods.by_index("namespace", ns or "")
        by_name = {p["metadata"]["name"]: p for p in in_ns}
        satisfied = self._satisfied(key, by_name)
        claimed = await self._claim(owner, in_ns)
        active = [p for p in claimed if podutil.is_active(p)]
        failure = None
        if satisfied and not podutil.is_terminating(owner):
            failure = await self._manage(key, owner, active)
        now = podutil.utcnow()
        status = compute_status(owner, active, now, failure)
        if status_differs(owner.get("status"), status):
            await self._write_status(owner, status)
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            self.queue.add_after(key, min_ready)  # pods become available by time passing alone

    async def _claim(self, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods this object controls after adopting matching orphans and releasing the rest."""
        w, uid = self.workload, owner["metadata"]["uid"]
        out = []
        for pod in pods:
            ref = podutil.controller_ref(pod)
            labels = pod["metadata"].get("labels") or {}
            if ref is not None and ref.get("uid") == uid:
                if w.matches(owner, labels) or podutil.is_terminating(owner):
                    out.append(pod)
                else:
                    await self._set_owner(pod, [r for r in pod["metadata"]["ownerReferences"]
                                                if r.get("uid") != uid])
            elif ref is None and w.matches(owner, labels) and not podutil.is_terminating(pod) \
                    and not podutil.is_terminating(owner):
                refs = list(pod["metadata"].get("ownerReferences") or [])
                refs.append(podutil.owner_ref(owner, w.api_version, w.kind))
                if await self._set_owner(pod, refs, pod["metadata"].get("uid")):
                    out.append(pod)
        return out

    async def _set_owner(self, pod: Obj, refs: list[Obj], uid: str | None = None) -> bool:
        meta: Obj = {"ownerReferences": refs or None}
        if uid:
            meta["uid"] = uid  # adopt only the pod we looked at, not a new one with its name
        try:
            await self.api.patch("", "v1", "pods", pod["metadata"]["name"], {"metadata": meta},
                                 pod["metadata"]["namespace"])
            return True
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                return False
            raise

    async def _manage(self, key: str, owner: Obj, active: list[Obj]) -> str | None:
        """Create or delete pods; returns a creation failure message for the condition."""
        w = self.workload
        create, delete = plan_scale(desired_replicas(owner), active)
        ns = owner["metadata"]["namespace"]
        if create:
            exp = self.expectations.setdefault(key, _Expectations(set(), set(), time.monotonic()))
            template = (owner.get("spec") or {}).get("template") or {}
            for batch in slow_start_batches(create):
                pod = podutil.pod_from_template(template, owner, w.api_version, w.kind)
                results = await asyncio.gather(*(self.api.create("", "v1", "pods", pod, ns)
                                                 for _ in range(batch)), return_exceptions=True)
                errors = [r for r in results if isinstance(r, BaseException)]
                for r in results:
                    if not isinstance(r, BaseException):
                        exp.creates.add(r["metadata"]["name"])
                        self.ctx.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
                if errors:
                    msg = str(errors[0])
                    self.ctx.event(owner, "Warning", "FailedCreate", f"Error creating: {msg}")
                    if not exp.creates:
                        self.expectations.pop(key, None)
                    if isinstance(errors[0], ApiStatusError) and errors[0].code in (403, 422):
                        return msg  # a quota or a bad template: report, retry on the next change
                    raise errors[0]
        if delete:
            exp = self.expectations.setdefault(key, _Expectations(set(), set(), time.monotonic()))
            names = [p["metadata"]["name"] for p in delete]
            exp.deletes.update(names)
            results = await asyncio.gather(*(self.api.delete("", "v1", "pods", n, ns) for n in names),
                                           return_exceptions=True)
            for n, r in zip(names, results):
                if isinstance(r, ApiStatusError) and r.code == 404:
                    exp.deletes.discard(n)
                elif isinstance(r, BaseException):
                    exp.deletes.discard(n)
                    raise r
                else:
                    self.ctx.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {n}")
        return None

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        w = self.workload
        body = dict(owner, status=dict(owner.get("status") or {}, **status))
        if "conditions" not in status:
            body["status"].pop("conditions", None)
        try:
            await self.api.replace(w.group, w.version, w.plural, body, owner["metadata"]["namespace"], sub="status")
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    workload = REPLICATIONCONTROLLER
    requires = (("", "v1", "replicationcontrollers"),)
