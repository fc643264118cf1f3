"""The statefulset controller: pods with stable names, stable storage, in order.

Pod `<set>-<ordinal>` (ordinals from spec.ordinals.start, default 0; hostname the pod name, subdomain the governing Service) and, for each
volumeClaimTemplate, the claim `<template>-<set>-<ordinal>`, created before its pod and kept
after it. OrderedReady creates ordinal i only once 0..i-1 are Running and Ready and removes from
the highest ordinal down, one at a time; Parallel does all at once. Each template is recorded in a
ControllerRevision (`<set>-<hash>`, numbered, pruned past revisionHistoryLimit) whose hash labels
the pods (`controller-revision-hash`). persistentVolumeClaimRetentionPolicy: whenDeleted Delete makes
the set own its claims (the garbage collector removes them with it); whenScaled Delete removes the
claims of ordinals scaled away once their pod is gone. RollingUpdate replaces pods at ordinals >= partition from the
highest down, one at a time once the rest are ready; OnDelete leaves that to the user. Status
carries the counts and current/update revisions `kubectl rollout status sts` reads.
"""

from __future__ import annotations

import copy
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import history, podutil, rollout
from .base import Controller, split_key

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


# -- pure decisions ---------------------------------------------------------------------------------
def ordinal(set_name: str, pod: Obj) -> int | None:
    name = pod["metadata"]["name"]
    prefix, _, tail = name.rpartition("-")
    return int(tail) if prefix == set_name and tail.isdigit() else None


def claim_name(template: Obj, set_name: str, i: int) -> str:
    return f"{template['metadata']['name']}-{set_name}-{i}"


def revision_hash(sts: Obj) -> str:
    return rollout.template_hash((sts.get("spec") or {}).get("template") or {},
                                 int((sts.get("status") or {}).get("collisionCount") or 0))


def pod_for(sts: Obj, i: int, revision: str, template: Obj | None = None) -> Obj:
    name = sts["metadata"]["name"]
    spec = sts.get("spec") or {}
    pod = podutil.pod_from_template(template or spec.get("template") or {}, sts, "apps/v1", "StatefulSet")
    meta = pod["metadata"]
    meta.pop("generateName")
    meta["name"] = f"{name}-{i}"
    meta["labels"].update({HASH_LABEL: revision, POD_NAME_LABEL: f"{name}-{i}", POD_INDEX_LABEL: str(i)})
    pod["spec"]["hostname"] = f"{name}-{i}"
    if spec.get("serviceName"):
        pod["spec"]["subdomain"] = spec["serviceName"]
    volumes = [v for v in pod["spec"].get("volumes") or []
               if v.get("name") not in {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}]
    for t in spec.get("volumeClaimTemplates") or []:
        volumes.append({"name": t["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim_name(t, name, i)}})
    if volumes:
        pod["spec"]["volumes"] = volumes
    return pod


def retention(sts: Obj, when: str) -> str:
    """persistentVolumeClaimRetentionPolicy.whenDeleted/whenScaled: Retain (default) or Delete."""
    return ((sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}).get(when) or "Retain"


def claim_for(sts: Obj, template: Obj, i: int) -> Obj:
    name = sts["metadata"]["name"]
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": claim_name(template, name, i), "namespace": sts["metadata"]["namespace"],
                          "labels": labels},
             "spec": copy.deepcopy(template.get("spec") or {})}
    if retention(sts, "whenDeleted") == "Delete":  # the garbage collector takes it with the set
        claim["metadata"]["ownerReferences"] = [podutil.owner_ref(sts, "apps/v1", "StatefulSet")]
    return claim


def condemned_claims(sts: Obj, pods: dict[int, Obj], claims: list[Obj]) -> list[Obj]:
    """Claims of ordinals scaled away whose pod is gone, when whenScaled is Delete."""
    if retention(sts, "whenScaled") != "Delete":
        return []
    name, wanted = sts["metadata"]["name"], ordinal_range(sts)
    out = []
    for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        prefix = f"{t['metadata']['name']}-{name}-"
        for c in claims:
            tail = c["metadata"]["name"][len(prefix):] if c["metadata"]["name"].startswith(prefix) else ""
            if tail.isdigit() and int(tail) not in wanted and int(tail) not in pods and not podutil.is_terminating(c):
                out.append(c)
    return out


def healthy(pod: Obj | None) -> bool:
    return pod is not None and not podutil.is_terminating(pod) and \
        (pod.get("status") or {}).get("phase") == "Running" and podutil.is_ready(pod)


def ordinal_range(sts: Obj) -> range:
    """The ordinals a set should have: spec.ordinals.start onwards, replicas of them."""
    start = int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)
    return range(start, start + rollout.replicas_of(sts))


def plan(sts: Obj, pods: dict[int, Obj], update_rev: str) -> tuple[list[int], list[Obj]]:
    """(ordinals to create, pods to delete) for one step."""
    spec = sts.get("spec") or {}
    wanted = ordinal_range(sts)
    ordered = (spec.get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
    create, delete = [], []
    for i in wanted:
        pod = pods.get(i)
        if pod is None:
            create.append(i)
            if ordered:
                break
        elif (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded") and not podutil.is_terminating(pod):
            delete.append(pod)  # recreated on the next pass
            if ordered:
                break
        elif ordered and not healthy(pod):
            break  # wait for this ordinal before the next
    if create or delete or (ordered and any(podutil.is_terminating(p) for p in pods.values())):
        return create, delete
    surplus = sorted((i for i in pods if i not in wanted), reverse=True)
    if surplus:
        if not ordered:
            return [], [pods[i] for i in surplus if not podutil.is_terminating(pods[i])]
        if all(healthy(pods.get(i)) for i in wanted):
            return [], [pods[surplus[0]]]
        return [], []
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return [], []
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    if not all(healthy(pods.get(i)) for i in wanted):
        return [], []
    for i in reversed(wanted[partition:]):  # the partition counts replicas, from the first ordinal
        pod = pods[i]
        if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) != update_rev:
            return [], [pod]
    return [], []


# -- the controller --------------------------------------------------------------------------------
class StatefulSetController(Controller):
    name = "statefulset"
    requires = (("apps", "v1", "statefulsets"), ("apps", "v1", "controllerrevisions"))

    def setup(self) -> None:
        self.sets = self.ctx.informer("apps", "v1", "statefulsets")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.revisions = self.ctx.informer("apps", "v1", "controllerrevisions")
        self.claims = self.ctx.informer("", "v1", "persistentvolumeclaims")
        self.enqueue_all(self.sets)
        self.pods.add_handler(self._pod, lambda _o, n: self._pod(n), self._pod)

    def _pod(self, pod: Obj) -> None:
        ref = podutil.controller_ref(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        ns, name = split_key(key)
        owned = [p for p in self.pods.by_index("namespace", ns or "") if podutil.owned_by(p, sts)]
        pods = {o: p for p in owned if (o := ordinal(name, p)) is not None}
        update_rev = await self._revision(sts)
        if not podutil.is_terminating(sts):
            create, delete = plan(sts, pods, update_rev)
            for i in create:
                await self._create(sts, i, update_rev)
            for pod in delete:
                try:
                    await self.api.delete("", "v1", "pods", pod["metadata"]["name"], ns, uid=pod["metadata"]["uid"])
                    self.ctx.event(sts, "Normal", "SuccessfulDelete",
                                   f"delete Pod {pod['metadata']['name']} in StatefulSet {name} successful")
                except ApiStatusError as exc:
                    if exc.code not in (404, 409):
                        raise
            for claim in condemned_claims(sts, pods, self.claims.by_index("namespace", ns or "")):
                try:
                    await self.api.delete("", "v1", "persistentvolumeclaims", claim["metadata"]["name"], ns,
                                          uid=claim["metadata"]["uid"])
                except ApiStatusError as exc:
                    if exc.code not in (404, 409):
                        raise
        await self._status(sts, pods, update_rev)

    async def _revision(self, sts: Obj) -> str:
        """The hash of the current template; its ControllerRevision made (or renumbered) as needed."""
        h = revision_hash(sts)
        ns = sts["metadata"]["namespace"]
        in_use = {(p["metadata"].get("labels") or {}).get(HASH_LABEL)
                  for p in self.pods.by_index("namespace", ns) if podutil.owned_by(p, sts)}
        await history.sync_history(self.api, self.revisions, sts, "StatefulSet", h, in_use)
        return h

    async def _create(self, sts: Obj, i: int, rev: str) -> None:
        ns = sts["metadata"]["namespace"]
        for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            try:
                await self.api.create("", "v1", "persistentvolumeclaims", claim_for(sts, t, i), ns)
            except ApiStatusError as exc:
                if exc.code != 409:  # the claim outlives its pod: reuse it
                    raise
        try:
            made = await self.api.create("", "v1", "pods", pod_for(sts, i, rev), ns)
            self.ctx.event(sts, "Normal", "SuccessfulCreate",
                           f"create Pod {made['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful")
        except ApiStatusError as exc:
            if exc.code != 409:  # an earlier pass made it; the cache will show it
                raise

    async def _status(self, sts: Obj, pods: dict[int, Obj], update_rev: str) -> None:
        name = sts["metadata"]["name"]
        live = [p for p in pods.values() if not podutil.is_terminating(p)]
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        now = podutil.utcnow()
        old = sts.get("status") or {}
        current_rev = old.get("currentRevision") or f"{name}-{update_rev}"
        updated = [p for p in live if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == update_rev]
        current = [p for p in live if f"{name}-{(p['metadata'].get('labels') or {}).get(HASH_LABEL)}" == current_rev]
        replicas = rollout.replicas_of(sts)
        if len(updated) == replicas and all(healthy(p) for p in updated):
            current_rev, current = f"{name}-{update_rev}", updated
        status = dict(old, observedGeneration=sts["metadata"].get("generation", 1), replicas=len(live),
                      readyReplicas=sum(1 for p in live if podutil.is_ready(p)),
                      availableReplicas=sum(1 for p in live if podutil.is_available(p, min_ready, now)),
                      currentReplicas=len(current), updatedReplicas=len(updated),
                      currentRevision=current_rev, updateRevision=f"{name}-{update_rev}",
                      collisionCount=int(old.get("collisionCount") or 0))
        if status != old:
            try:
                await self.api.replace("apps", "v1", "statefulsets", dict(sts, status=status),
                                       sts["metadata"]["namespace"], sub="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
