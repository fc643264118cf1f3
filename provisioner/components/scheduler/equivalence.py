"""An equivalence cache: pods that look the same to every active plugin get the same per-node
filter results and raw scores, so a ReplicaSet's 300 identical pods do not re-evaluate 400 nodes
each from scratch (kube-scheduler had such a cache until its framework rewrite; here it keeps
Python within reach of its throughput).

Only "node-local" plugins qualify: their answer for a node depends on the pod and that node alone
(taints, labels, the node's pods and ports). A node's `version` changes whenever its object or its
pods change, so a stale entry is never used; plugins that look across nodes (topology spread,
inter-pod affinity) or nominated pods (preemption) switch the cache off for that pod. Any node
added, changed or removed clears everything (image locality depends on all nodes).
"""

from __future__ import annotations

import json
from collections import OrderedDict

MAX_CLASSES = 64
NODE_LOCAL_FILTERS = {"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                      "NodeResourcesFit"}
NODE_LOCAL_SCORES = {"NodeResourcesFit", "NodeResourcesBalancedAllocation", "NodeAffinity", "TaintToleration",
                     "ImageLocality"}
SPEC_FIELDS = ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints", "overhead", "nodeName",
               "schedulerName")


def signature(pod: dict) -> str:
    """What node-local plugins read from a pod: containers' resources, images and ports, and the
    placement fields of its spec."""
    spec = pod.get("spec") or {}
    containers = [(c.get("image"), c.get("resources"), c.get("ports"), c.get("restartPolicy"))
                  for key in ("initContainers", "containers") for c in spec.get(key) or []]
    return json.dumps([containers, [spec.get(f) for f in SPEC_FIELDS]], sort_keys=True, default=str)


class EquivalenceCache:
    def __init__(self) -> None:
        self.classes: OrderedDict[tuple, dict[str, list]] = OrderedDict()

    def clear(self) -> None:
        self.classes.clear()

    def entries(self, profile_name: str, pod: dict, active_filters: list, active_scores: list,
                has_nominations: bool) -> dict[str, list] | None:
        """The per-node entries ([version, failure, raw scores in scorer order]) for this pod's class,
        or None when some active plugin looks beyond the node."""
        if has_nominations:
            return None
        if any(p.name not in NODE_LOCAL_FILTERS for p in active_filters):
            return None
        if any(p.name not in NODE_LOCAL_SCORES for p in active_scores):
            return None
        key = (profile_name, signature(pod))
        entries = self.classes.get(key)
        if entries is None:
            entries = self.classes[key] = {}
            while len(self.classes) > MAX_CLASSES:
                self.classes.popitem(last=False)
        else:
            self.classes.move_to_end(key)
        return entries
