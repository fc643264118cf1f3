"""Pure helpers over pods, label selectors and owner references, shared by the workload controllers.

Upstream keeps these in pkg/controller/controller_utils.go and apimachinery's labels package:
which pods count as active, ready or available, the order in which to delete surplus pods, how a
LabelSelector matches, and the pod a template stamps out.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

Obj = dict[str, Any]


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- label selectors --------------------------------------------------------------------------
_OPS = {
    "In": lambda labels, k, vs: k in labels and labels[k] in vs,
    "NotIn": lambda labels, k, vs: k not in labels or labels[k] not in vs,
    "Exists": lambda labels, k, vs: k in labels,
    "DoesNotExist": lambda labels, k, vs: k not in labels,
}


def selector_matches(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector against labels. An empty selector matches everything; a missing
    (None) selector matches nothing, as for workload controllers."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        op = _OPS.get(expr.get("operator", ""))
        if op is None or not op(labels, expr.get("key", ""), expr.get("values") or []):
            return False
    return True


def map_selector_matches(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """A plain map selector (Service, ReplicationController); empty/None matches nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


# -- owner references -------------------------------------------------------------------------
def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owned_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def owner_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


# -- pod state ----------------------------------------------------------------------------------
def is_terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Counts toward replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


def ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least minReadySeconds (by the Ready condition's lastTransitionTime)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) <= now


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj) -> tuple:
    """Sort key: pods sorting first are deleted first when scaling down (upstream ActivePods):
    unscheduled, then pending, not ready, lower deletion cost, ready shorter, more restarts, newer."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    ready = is_ready(pod)
    cost = (meta.get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost", "0")
    try:
        cost_n = int(cost)
    except ValueError:
        cost_n = 0
    ready_since = (ready_condition(pod) or {}).get("lastTransitionTime") or "" if ready else ""
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = meta.get("creationTimestamp") or ""
    return (bool((pod.get("spec") or {}).get("nodeName")), _PHASE_RANK.get(status.get("phase", ""), 0),
            ready, cost_n, _neg(ready_since), -restarts, _neg(created))


def _neg(text: str) -> tuple:
    """Descending order for timestamps (later first) inside an ascending sort key."""
    return tuple(-ord(ch) for ch in text)


def pod_from_template(template: Obj, owner: Obj, api_version: str, kind: str,
                      generate_name: str | None = None) -> Obj:
    """The Pod a workload's template stamps out, owned by it (controller ownerReference)."""
    tmeta = template.get("metadata") or {}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": generate_name or f"{owner['metadata']['name']}-",
                        "namespace": owner["metadata"].get("namespace"),
                        "labels": dict(tmeta.get("labels") or {}),
                        "ownerReferences": [owner_ref(owner, api_version, kind)]},
           "spec": copy.deepcopy(template.get("spec") or {})}
    if tmeta.get("annotations"):
        pod["metadata"]["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod["metadata"]["finalizers"] = list(tmeta["finalizers"])
    return pod
