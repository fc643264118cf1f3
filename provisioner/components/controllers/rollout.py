"""Pure rollout arithmetic for the deployment controller (upstream pkg/controller/deployment/util).

Everything here is a function of objects in, numbers or objects out: the pod-template hash that
names a ReplicaSet, the revision bookkeeping that `kubectl rollout history|undo` reads, maxSurge
and maxUnavailable resolution, how far a rolling update may scale the new and old ReplicaSets in
one step, the status and conditions `kubectl rollout status` waits on.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from typing import Any

from . import podutil

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# deployment annotations that are not copied onto its ReplicaSets
NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                        DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.SafeEncodeString alphabet (no vowels)

# condition reasons, as upstream names them (kubectl matches ProgressDeadlineExceeded)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


# -- names, hashes, revisions -------------------------------------------------------------------
def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """The pod-template-hash label value: stable for a template, changed by collisionCount."""
    t = copy.deepcopy(template)
    ((t.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    data = json.dumps(t, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in str(fnv32a(data)))


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    a, b = copy.deepcopy(a or {}), copy.deepcopy(b or {})
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
            if not labels:
                t["metadata"].pop("labels")
        if t.get("metadata") == {}:
            t.pop("metadata")
    return a == b


def revision(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def replicaset_annotations(deployment: Obj, rs: Obj, new_revision: int | None, max_surge: int) -> Obj:
    """The annotations `rs` should carry as the deployment's current ReplicaSet."""
    dmeta = deployment.get("metadata") or {}
    out = dict((rs.get("metadata") or {}).get("annotations") or {})
    for k, v in (dmeta.get("annotations") or {}).items():
        if k not in NOT_COPIED:
            out[k] = v
    if new_revision is not None:
        old = revision(rs)
        if old and old < new_revision:
            history = [h for h in out.get(REVISION_HISTORY, "").split(",") if h]
            out[REVISION_HISTORY] = ",".join(history + [str(old)])
        if old < new_revision:
            out[REVISION] = str(new_revision)
    replicas = replicas_of(deployment)
    out[DESIRED_REPLICAS] = str(replicas)
    out[MAX_REPLICAS] = str(replicas + max_surge)
    return out


def replicas_annotations(deployment: Obj, rs: Obj, max_surge: int) -> Obj:
    """`rs`'s annotations with desired/max replicas brought up to date (and nothing else)."""
    out = dict((rs.get("metadata") or {}).get("annotations") or {})
    replicas = replicas_of(deployment)
    out[DESIRED_REPLICAS] = str(replicas)
    out[MAX_REPLICAS] = str(replicas + max_surge)
    return out


def new_replicaset(deployment: Obj, collision_count: int, replicas: int, new_revision: int,
                   max_surge: int) -> Obj:
    """The ReplicaSet a deployment's current template needs."""
    template = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
    h = template_hash(template, collision_count)
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    selector = copy.deepcopy((deployment.get("spec") or {}).get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    dmeta = deployment["metadata"]
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": f"{dmeta['name']}-{h}", "namespace": dmeta.get("namespace"),
                       "labels": dict(template["metadata"]["labels"]),
                       "ownerReferences": [podutil.owner_ref(deployment, "apps/v1", "Deployment")]},
          "spec": {"replicas": replicas, "selector": selector, "template": template,
                   "minReadySeconds": int((deployment.get("spec") or {}).get("minReadySeconds") or 0)}}
    rs["metadata"]["annotations"] = replicaset_annotations(deployment, rs, new_revision, max_surge)
    return rs


# -- surge and unavailability ---------------------------------------------------------------------
def replicas_of(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (3 or "25%") against total."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods; never both zero (then 1 may be unavailable)."""
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    replicas = replicas_of(deployment)
    surge = scaled_value(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(deployment: Obj) -> int:
    replicas = replicas_of(deployment)
    if replicas == 0:
        return 0
    return min(fenceposts(deployment)[1], replicas)


def spec_replicas(rss: list[Obj]) -> int:
    return sum(int((rs.get("spec") or {}).get("replicas") or 0) for rs in rss)


def status_count(rss: list[Obj], field: str) -> int:
    return sum(int((rs.get("status") or {}).get(field) or 0) for rs in rss)


def rolling_new_replicas(deployment: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """What the new ReplicaSet may be scaled to in this step of a rolling update."""
    replicas = replicas_of(deployment)
    current_new = int((new_rs.get("spec") or {}).get("replicas") or 0)
    surge, _ = fenceposts(deployment)
    total = spec_replicas(all_rss)
    if total >= replicas + surge:
        return current_new
    return current_new + min(replicas + surge - total, max(0, replicas - current_new))


def rolling_old_scale_down(deployment: Obj, all_rss: list[Obj], old_rss: list[Obj],
                           new_rs: Obj | None) -> dict[str, int]:
    """name -> new replicas for old ReplicaSets this step (upstream reconcileOldReplicaSets):
    first unhealthy replicas go, then healthy ones down to the availability floor."""
    if spec_replicas(old_rss) == 0:
        return {}
    replicas = replicas_of(deployment)
    min_available = replicas - max_unavailable(deployment)
    new_unavailable = 0
    if new_rs is not None:
        new_unavailable = int((new_rs.get("spec") or {}).get("replicas") or 0) - \
            int((new_rs.get("status") or {}).get("availableReplicas") or 0)
    budget = spec_replicas(all_rss) - min_available - new_unavailable
    if budget <= 0:
        return {}
    target = {rs["metadata"]["name"]: int((rs.get("spec") or {}).get("replicas") or 0) for rs in old_rss}
    oldest_first = sorted(old_rss, key=lambda r: (r["metadata"].get("creationTimestamp") or "",
                                                  r["metadata"]["name"]))
    cleaned = 0
    for rs in oldest_first:  # unhealthy first: they cost no availability
        if cleaned >= budget:
            break
        name = rs["metadata"]["name"]
        unhealthy = target[name] - int((rs.get("status") or {}).get("availableReplicas") or 0)
        cut = min(budget - cleaned, max(0, unhealthy), target[name])
        target[name] -= cut
        cleaned += cut
    available = status_count(all_rss, "availableReplicas")
    # unavailable pods removed above change availability nothing
    remaining = max(0, available - min_available)
    for rs in oldest_first:
        if remaining <= 0:
            break
        name = rs["metadata"]["name"]
        cut = min(target[name], remaining)
        target[name] -= cut
        remaining -= cut
    return {rs["metadata"]["name"]: target[rs["metadata"]["name"]] for rs in old_rss
            if target[rs["metadata"]["name"]] != int((rs.get("spec") or {}).get("replicas") or 0)}


def proportional_scale(deployment: Obj, active: list[Obj], new_rs: Obj | None) -> dict[str, int]:
    """name -> replicas when the deployment is resized mid-rollout: spread the change over the
    active ReplicaSets in proportion to their size (the newest takes the rounding)."""
    surge, _ = fenceposts(deployment)
    allowed = replicas_of(deployment) + surge
    total = spec_replicas(active)
    if not active or total == allowed:
        return {}
    out: dict[str, int] = {}
    given = 0
    for rs in active:
        size = int((rs.get("spec") or {}).get("replicas") or 0)
        share = size * allowed // total if total else 0
        out[rs["metadata"]["name"]] = share
        given += share
    newest = new_rs or max(active, key=lambda r: (revision(r), r["metadata"].get("creationTimestamp") or ""))
    out[newest["metadata"]["name"]] = out.get(newest["metadata"]["name"], 0) + allowed - given
    return {k: v for k, v in out.items()
            if v != next(int((r.get("spec") or {}).get("replicas") or 0) for r in active
                         if r["metadata"]["name"] == k)}


# -- status and conditions ----------------------------------------------------------------------
def get_condition(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def set_condition(status: Obj, ctype: str, cstatus: str, reason: str, message: str, now: str,
                  refresh: bool = False) -> None:
    """Upstream SetDeploymentCondition: the same status and reason is no change (unless refresh,
    which moves lastUpdateTime); the same status keeps lastTransitionTime."""
    cur = get_condition(status, ctype)
    if cur is not None and cur.get("status") == cstatus and cur.get("reason") == reason and not refresh:
        return
    cond = {"type": ctype, "status": cstatus, "lastUpdateTime": now,
            "lastTransitionTime": cur["lastTransitionTime"] if cur is not None and cur.get("status") == cstatus
            and cur.get("lastTransitionTime") else now, "reason": reason, "message": message}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype] + [cond]


def calculate_status(deployment: Obj, all_rss: list[Obj], new_rs: Obj | None, now: str) -> Obj:
    replicas = replicas_of(deployment)
    available = status_count(all_rss, "availableReplicas")
    status = {
        "observedGeneration": (deployment.get("metadata") or {}).get("generation", 1),
        "replicas": status_count(all_rss, "replicas"),
        "updatedReplicas": status_count([new_rs], "replicas") if new_rs else 0,
        "readyReplicas": status_count(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, spec_replicas(all_rss) - available),
    }
    old = deployment.get("status") or {}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= replicas - max_unavailable(deployment):
        set_condition(status, "Available", "True", "MinimumReplicasAvailable",
                      "Deployment has minimum availability.", now)
    else:
        set_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", now)
    return status


def is_complete(deployment: Obj, status: Obj) -> bool:
    replicas = replicas_of(deployment)
    return (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 1))


def is_progressing(deployment: Obj, status: Obj) -> bool:
    old = deployment.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deadline_left(deployment: Obj, status: Obj, now: dt.datetime) -> float | None:
    """Seconds until the progress deadline passes (<= 0: passed); None when none applies."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    cond = get_condition(status, "Progressing")
    if deadline is None or cond is None or cond.get("status") != "True" or \
            cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    since = podutil.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return (since + dt.timedelta(seconds=int(deadline)) - now).total_seconds()


def rollout_conditions(deployment: Obj, status: Obj, new_rs: Obj | None, now: dt.datetime) -> None:
    """Upstream syncRolloutStatus: Progressing moves to complete, progressing or timed out."""
    if (deployment.get("spec") or {}).get("progressDeadlineSeconds") is None:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != "Progressing"]
        return
    stamp = podutil.rfc3339(now)
    cur = get_condition(status, "Progressing")
    if status.get("replicas") == status.get("updatedReplicas") and cur is not None \
            and cur.get("reason") == NEW_RS_AVAILABLE:
        return
    what = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else \
        f'Deployment "{deployment["metadata"]["name"]}"'
    if is_complete(deployment, status):
        set_condition(status, "Progressing", "True", NEW_RS_AVAILABLE, f"{what} has successfully progressed.", stamp)
    elif is_progressing(deployment, status):
        set_condition(status, "Progressing", "True", RS_UPDATED, f"{what} is progressing.", stamp, refresh=True)
    elif (left := deadline_left(deployment, status, now)) is not None and left <= 0:
        set_condition(status, "Progressing", "False", TIMED_OUT, f"{what} has timed out progressing.", stamp)


def paused_conditions(deployment: Obj, status: Obj, now: dt.datetime) -> None:
    """Progressing=Unknown while paused (DeploymentPaused), DeploymentResumed on resume."""
    if (deployment.get("spec") or {}).get("progressDeadlineSeconds") is None:
        return
    cur = get_condition(status, "Progressing")
    paused = bool((deployment.get("spec") or {}).get("paused"))
    stamp = podutil.rfc3339(now)
    if paused and (cur is None or cur.get("reason") != PAUSED):
        set_condition(status, "Progressing", "Unknown", PAUSED, "Deployment is paused", stamp)
    elif not paused and cur is not None and cur.get("reason") == PAUSED:
        set_condition(status, "Progressing", "Unknown", RESUMED, "Deployment is resumed", stamp)


def compact_status(status: Obj) -> Obj:
    """Drop zero counters as the API's omitempty does."""
    return {k: v for k, v in status.items() if v not in (0, None, []) or k == "observedGeneration"}
