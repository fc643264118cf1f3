"""The deployment controller: ReplicaSets per template revision, rolled by the strategy.

sync() claims the deployment's ReplicaSets, finds or creates the one for the current template
(named `<deployment>-<pod-template-hash>`, revision annotations kept so `kubectl rollout history`
and `undo` work), then either only scales (paused, or resized), or takes one step of the
strategy: RollingUpdate within maxSurge/maxUnavailable, or Recreate (old pods gone first). It
prunes history past revisionHistoryLimit and writes status and the Available/Progressing
conditions `kubectl rollout status` reads. The arithmetic is in rollout.py.
"""

from __future__ import annotations

import contextvars
import copy
import logging
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil, rollout
from .base import Controller, split_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# what this sync wrote (uid -> ReplicaSet) and created (name): newer than the cache until it catches up
_WRITTEN: contextvars.ContextVar[dict[str, Obj]] = contextvars.ContextVar("written")
_CREATED: contextvars.ContextVar[str | None] = contextvars.ContextVar("created", default=None)


class DeploymentController(Controller):
    name = "deployment"

    def setup(self) -> None:
        self.deployments = self.ctx.informer("apps", "v1", "deployments")
        self.rss = self.ctx.informer("apps", "v1", "replicasets")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.enqueue_all(self.deployments)
        self.rss.add_handler(self._rs_changed, lambda o, n: (self._rs_changed(o), self._rs_changed(n)),
                             self._rs_changed)
        self.pods.add_handler(on_delete=self._pod_deleted)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = podutil.controller_ref(obj)
        if ref is not None and ref.get("kind") == "Deployment":
            return f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        return None

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key:
            self.queue.add(key)
            return
        labels = rs["metadata"].get("labels") or {}
        for d in self.deployments.by_index("namespace", rs["metadata"].get("namespace") or ""):
            if podutil.selector_matches((d.get("spec") or {}).get("selector"), labels):
                self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for old pods to be gone: their deletion is news."""
        ref = podutil.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        if rs is not None and (key := self._owner_key(rs)):
            self.queue.add(key)

    # -- sync ------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        d = self.deployments.get(key)
        if d is None:
            return
        d = copy.deepcopy(d)  # annotations are updated in place below; the cache's copy stays as read
        _WRITTEN.set({})  # per sync (each worker task has its own context)
        _CREATED.set(None)
        ns, _ = split_key(key)
        spec = d.get("spec") or {}
        if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get(
                "matchExpressions"):
            self.ctx.event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. "
                           "A non-empty selector is required.")
            return
        rss = await self._claim(d, self.rss.by_index("namespace", ns or ""))
        if podutil.is_terminating(d):
            await self._write_status(d, rss, self._find_new(d, rss))
            return
        if spec.get("paused"):
            new_rs, old = await self._sync_revision(d, rss, create=False)
            await self._scale(d, new_rs, old)
            await self._cleanup(d, old)
            await self._write_status(d, rss, new_rs, paused=True)
            return
        new_rs, old = await self._sync_revision(d, rss, create=False)
        if self._scaling_event(d, new_rs, old):
            await self._scale(d, new_rs, old)
            await self._write_status(d, self._current(d, rss), new_rs)
            return
        if ((spec.get("strategy") or {}).get("type") or "RollingUpdate") == "Recreate":
            await self._recreate(d, new_rs, old)
        else:
            await self._rolling(d, new_rs, old)

    def _current(self, d: Obj, rss: list[Obj]) -> list[Obj]:
        """Re-read the claimed ReplicaSets after writes (the cache may lag: keep our writes)."""
        out = []
        for rs in rss:
            cached = self.rss.get(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")
            newer = _WRITTEN.get().get(rs["metadata"]["uid"])
            out.append(newer if newer is not None and (cached is None or int(
                newer["metadata"]["resourceVersion"]) >= int(cached["metadata"]["resourceVersion"]))
                else cached or rs)
        return out

    async def _claim(self, d: Obj, candidates: list[Obj]) -> list[Obj]:
        uid = d["metadata"]["uid"]
        selector = (d.get("spec") or {}).get("selector")
        out = []
        for rs in candidates:
            ref = podutil.controller_ref(rs)
            labels = rs["metadata"].get("labels") or {}
            if ref is not None and ref.get("uid") == uid:
                out.append(rs)
            elif ref is None and podutil.selector_matches(selector, labels) and not podutil.is_terminating(d):
                refs = list(rs["metadata"].get("ownerReferences") or [])
                refs.append(podutil.owner_ref(d, "apps/v1", "Deployment"))
                try:
                    out.append(await self.api.patch("apps", "v1", "replicasets", rs["metadata"]["name"],
                                                    {"metadata": {"ownerReferences": refs,
                                                                  "uid": rs["metadata"]["uid"]}},
                                                    rs["metadata"]["namespace"]))
                except ApiStatusError as exc:
                    if exc.code not in (404, 409, 422):
                        raise
        return out

    def _find_new(self, d: Obj, rss: list[Obj]) -> Obj | None:
        template = (d.get("spec") or {}).get("template") or {}
        matching = [rs for rs in rss if rollout.equal_ignore_hash((rs.get("spec") or {}).get("template"), template)]
        # the oldest wins if several match (upstream FindNewReplicaSet)
        return min(matching, key=lambda r: (r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]), default=None)

    async def _sync_revision(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, old ones); the new one's revision and annotations brought up
        to date, created when asked and missing."""
        new_rs = self._find_new(d, rss)
        old = [rs for rs in rss if rs is not new_rs]
        new_revision = max((rollout.revision(rs) for rs in old), default=0) + 1
        surge, _ = rollout.fenceposts(d)
        if new_rs is not None:
            annotations = rollout.replicaset_annotations(d, new_rs, new_revision, surge)
            min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if annotations != (new_rs["metadata"].get("annotations") or {}) or \
                    int((new_rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
                new_rs = await self._update_rs(new_rs, lambda rs: (
                    rs["metadata"].__setitem__("annotations", annotations),
                    rs["spec"].__setitem__("minReadySeconds", min_ready)))
            await self._set_revision(d, rollout.revision(new_rs))
            return new_rs, old
        if not create:
            return None, old
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        replicas = rollout.replicas_of(d)
        if ((d.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            probe = {"metadata": {"name": ""}, "spec": {"replicas": 0}}
            replicas = rollout.rolling_new_replicas(d, old + [probe], probe)
        body = rollout.new_replicaset(d, collisions, replicas, new_revision, surge)
        ns = d["metadata"]["namespace"]
        try:
            new_rs = await self.api.create("apps", "v1", "replicasets", body, ns)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.api.get("apps", "v1", "replicasets", body["metadata"]["name"], ns)
            if podutil.owned_by(existing, d) and rollout.equal_ignore_hash(
                    existing["spec"]["template"], d["spec"]["template"]):
                return existing, old
            # a name collision with another template: bump collisionCount so the hash changes
            status = dict(d.get("status") or {}, collisionCount=collisions + 1)
            await self.api.replace("apps", "v1", "deployments", dict(d, status=status), ns, sub="status")
            raise
        _WRITTEN.get()[new_rs["metadata"]["uid"]] = new_rs
        self.ctx.event(d, "Normal", "ScalingReplicaSet",
                       f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {replicas}")
        await self._set_revision(d, new_revision)
        _CREATED.set(new_rs["metadata"]["name"])
        return new_rs, old

    async def _set_revision(self, d: Obj, rev: int) -> None:
        annotations = (d["metadata"].get("annotations") or {})
        if annotations.get(rollout.REVISION) == str(rev):
            return
        out = await self.api.patch("apps", "v1", "deployments", d["metadata"]["name"],
                                   {"metadata": {"annotations": {rollout.REVISION: str(rev)}}},
                                   d["metadata"]["namespace"])
        d["metadata"]["annotations"] = out["metadata"].get("annotations")
        d["metadata"]["resourceVersion"] = out["metadata"]["resourceVersion"]

    async def _update_rs(self, rs: Obj, change: Any) -> Obj:
        body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": dict(rs["metadata"]),
                "spec": dict(rs["spec"])}
        body["metadata"]["annotations"] = dict(body["metadata"].get("annotations") or {})
        change(body)
        out = await self.api.replace("apps", "v1", "replicasets", body, rs["metadata"]["namespace"])
        _WRITTEN.get()[out["metadata"]["uid"]] = out
        return out

    async def _scale_rs(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        current = int((rs.get("spec") or {}).get("replicas") or 0)
        surge, _ = rollout.fenceposts(d)
        annotations = rollout.replicas_annotations(d, rs, surge)
        if current == replicas and annotations == (rs["metadata"].get("annotations") or {}):
            return rs
        out = await self._update_rs(rs, lambda body: (body["spec"].__setitem__("replicas", replicas),
                                                      body["metadata"].__setitem__("annotations", annotations)))
        if current != replicas:
            verb = "up" if replicas > current else "down"
            self.ctx.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {verb} replica set {rs['metadata']['name']} from {current} to {replicas}")
        return out

    # -- strategies --------------------------------------------------------------------------------
    def _scaling_event(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> bool:
        """The deployment was resized: an active ReplicaSet's desired-replicas annotation disagrees."""
        want = str(rollout.replicas_of(d))
        for rs in ([new_rs] if new_rs else []) + old:
            if int((rs.get("spec") or {}).get("replicas") or 0) > 0:
                got = (rs["metadata"].get("annotations") or {}).get(rollout.DESIRED_REPLICAS)
                if got is not None and got != want:
                    return True
        return False

    async def _scale(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        active = [rs for rs in ([new_rs] if new_rs else []) + old if int((rs.get("spec") or {}).get("replicas") or 0)]
        if len(active) <= 1:
            target = active[0] if active else new_rs
            if target is not None:
                await self._scale_rs(d, target, rollout.replicas_of(d))
            return
        plan = rollout.proportional_scale(d, active, new_rs)
        for rs in active:
            await self._scale_rs(d, rs, plan.get(rs["metadata"]["name"], int(rs["spec"].get("replicas") or 0)))

    async def _rolling(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        if new_rs is None:
            new_rs, old = await self._sync_revision(d, old, create=True)
        all_rss = self._current(d, old + [new_rs])
        new_rs, old = all_rss[-1], all_rss[:-1]
        want = rollout.rolling_new_replicas(d, all_rss, new_rs)
        if int(new_rs["spec"].get("replicas") or 0) > rollout.replicas_of(d):
            want = rollout.replicas_of(d)
        if want != int(new_rs["spec"].get("replicas") or 0):
            new_rs = await self._scale_rs(d, new_rs, want)
            all_rss = old + [new_rs]
        plan = rollout.rolling_old_scale_down(d, all_rss, old, new_rs)
        for rs in old:
            if rs["metadata"]["name"] in plan:
                await self._scale_rs(d, rs, plan[rs["metadata"]["name"]])
        if not plan and not rollout.spec_replicas(old):
            await self._cleanup(d, old)
        await self._write_status(d, self._current(d, old + [new_rs]), new_rs)

    async def _recreate(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        for rs in old:
            if int((rs.get("spec") or {}).get("replicas") or 0):
                await self._scale_rs(d, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        running = [p for p in self.pods.by_index("namespace", d["metadata"]["namespace"])
                   if (podutil.controller_ref(p) or {}).get("uid") in old_uids
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        if running or any(int((rs.get("status") or {}).get("replicas") or 0) for rs in self._current(d, old)):
            await self._write_status(d, self._current(d, old + ([new_rs] if new_rs else [])), new_rs)
            return  # wait for old pods to go (their deletion requeues us)
        if new_rs is None:
            new_rs, old = await self._sync_revision(d, old, create=True)
        new_rs = await self._scale_rs(d, new_rs, rollout.replicas_of(d))
        if not rollout.spec_replicas(old):
            await self._cleanup(d, old)
        await self._write_status(d, self._current(d, old + [new_rs]), new_rs)

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        """Delete the oldest empty ReplicaSets past revisionHistoryLimit."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not podutil.is_terminating(rs)]
        excess = len(alive) - int(limit)
        for rs in sorted(alive, key=rollout.revision):
            if excess <= 0:
                break
            st = rs.get("status") or {}
            if int(rs["spec"].get("replicas") or 0) or int(st.get("replicas") or 0) or \
                    int(st.get("observedGeneration") or 0) < int(rs["metadata"].get("generation") or 1):
                continue
            try:
                await self.api.delete("apps", "v1", "replicasets", rs["metadata"]["name"], rs["metadata"]["namespace"])
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
            excess -= 1

    # -- status ------------------------------------------------------------------------------------
    async def _write_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None, paused: bool = False) -> None:
        now = podutil.utcnow()
        stamp = podutil.rfc3339(now)
        status = rollout.calculate_status(d, all_rss, new_rs, stamp)
        if paused or rollout.get_condition(status, "Progressing") and \
                rollout.get_condition(status, "Progressing").get("reason") == rollout.PAUSED:
            rollout.paused_conditions(d, status, now)
        if not paused and (d.get("spec") or {}).get("progressDeadlineSeconds") is not None and new_rs:
            name = new_rs["metadata"]["name"]
            if _CREATED.get() == name:
                rollout.set_condition(status, "Progressing", "True", rollout.NEW_RS_CREATED,
                                      f'Created new replica set "{name}"', stamp)
            elif rollout.get_condition(status, "Progressing") is None:
                rollout.set_condition(status, "Progressing", "True", rollout.FOUND_NEW_RS,
                                      f'Found new replica set "{name}"', stamp)
            rollout.rollout_conditions(d, status, new_rs, now)
        failure = next((c for rs in all_rss for c in (rs.get("status") or {}).get("conditions") or []
                        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
        if failure is not None:  # a pod the ReplicaSet could not create (quota, a bad template)
            rollout.set_condition(status, "ReplicaFailure", "True", failure.get("reason", "FailedCreate"),
                                  failure.get("message", ""), stamp)
        else:
            status["conditions"] = [c for c in status["conditions"] if c.get("type") != "ReplicaFailure"]
        status = rollout.compact_status(status)
        if status != (d.get("status") or {}):
            try:
                await self.api.replace("apps", "v1", "deployments", dict(d, status=status),
                                       d["metadata"]["namespace"], sub="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        left = rollout.deadline_left(d, status, now)
        if left is not None and not rollout.is_complete(d, status):
            self.queue.add_after(f"{d['metadata']['namespace']}/{d['metadata']['name']}", max(left, 0) + 1)
