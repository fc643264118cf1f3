"""pods/eviction against PodDisruptionBudgets, as kube-apiserver's eviction subresource.

A pod covered by a budget is evicted only when the budget's status (kept by the disruption
controller) allows a disruption; the allowance is spent in the same revision-checked write that
records the pod under status.disruptedPods, so two evictions cannot both use the last one.
Otherwise the answer is 429 TooManyRequests with a DisruptionBudget cause, which `kubectl
drain` retries until its timeout. Pods that are not running (Pending, Succeeded, Failed) are
evicted without consulting budgets, as in Kubernetes.
"""

from __future__ import annotations

import copy

from . import fields
from .errors import ApiError
from .selectors import match_labels, selector_from_label_selector
from .storage import Storage

REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def too_many(cause: str) -> ApiError:
    return ApiError(429, "TooManyRequests", REFUSED,
                    {"causes": [{"reason": "DisruptionBudget", "message": cause}]})


def _covers(pdb: dict, pod: dict) -> bool:
    sel = (pdb.get("spec") or {}).get("selector")
    if not isinstance(sel, dict) or (not sel.get("matchLabels") and not sel.get("matchExpressions")):
        return False  # an empty selector in policy/v1 matches nothing here (kube: all pods)
    return match_labels(selector_from_label_selector(sel), (pod.get("metadata") or {}).get("labels") or {})


async def spend_budget(storage: Storage, pod: dict, dry_run: bool) -> None:
    """Raise unless the pod may be disrupted now; record the disruption when it may."""
    if (pod.get("status") or {}).get("phase") in ("Pending", "Succeeded", "Failed") or \
            (pod.get("metadata") or {}).get("deletionTimestamp"):
        return
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    for _attempt in range(8):
        pdbs, _, _ = await storage.list("poddisruptionbudgets", ns, predicate=lambda p: _covers(p, pod))
        if not pdbs:
            return
        if len(pdbs) > 1:
            raise ApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                           "eviction subresource does not support.")
        pdb = pdbs[0]
        status = pdb.get("status") or {}
        pdb_name = pdb["metadata"]["name"]
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
            raise too_many(f"The disruption budget {pdb_name} is still being processed by the server.")
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise ApiError(403, "Forbidden", "pdb disruptions allowed is negative")
        if allowed == 0:
            raise too_many(f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} healthy "
                           f"pods and has {status.get('currentHealthy', 0)} currently")
        if dry_run:
            return
        new = copy.deepcopy(pdb)
        new["status"]["disruptionsAllowed"] = allowed - 1
        new["status"].setdefault("disruptedPods", {})[name] = fields.now()
        try:
            await storage.update("poddisruptionbudgets", ns, pdb_name, new, int(pdb["metadata"]["resourceVersion"]))
            return
        except ApiError as exc:
            if exc.reason != "Conflict":
                raise
    raise too_many("The disruption budget changed too often to be checked; retry.")
