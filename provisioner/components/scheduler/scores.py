"""Score plugins: how good is this node for this pod? Same names and default weights as
kube-scheduler; each returns a raw score per node that `normalize` brings to 0..100.
SCORES is the table the configuration enables plugins (and their weights) from.
"""

from __future__ import annotations

from . import podinfo
from .cache import normalize_image
from .filters import (
    affinity,
    counts_by_domain,
    pod_namespace,
    preferred_terms,
    spec,
    spread_constraints,
    spread_node_filter,
    term_matches_pod,
)
from .framework import MAX_NODE_SCORE, Plugin, normalize_by_max, normalize_min_max, topology_weight

RESOURCE_WEIGHTS = {"cpu": 1, "memory": 1}
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
# kube-scheduler's system-default spreading for pods of one workload, when the pod sets none
SYSTEM_DEFAULT_CONSTRAINTS = ({"topologyKey": HOSTNAME, "maxSkew": 3, "whenUnsatisfiable": "ScheduleAnyway"},
                              {"topologyKey": ZONE, "maxSkew": 5, "whenUnsatisfiable": "ScheduleAnyway"})
IMAGE_MIN = 23 * 1024 * 1024
IMAGE_MAX = 1000 * 1024 * 1024


class NodeResourcesFit(Plugin):
    """LeastAllocated (default): prefer nodes with the most room left; MostAllocated: the least.
    Requests count non-zero (100m CPU, 200Mi memory for containers that set none)."""
    name = "NodeResourcesFit"

    def __init__(self, args: dict | None = None) -> None:
        super().__init__(args)
        strategy = self.args.get("scoringStrategy") or {}
        self.most = strategy.get("type") == "MostAllocated"
        self.weights = {r["name"]: int(r.get("weight") or 1) for r in strategy.get("resources") or []} \
            or RESOURCE_WEIGHTS

    def pre_score(self, state, pod, cache, nodes):
        state[self.name + ":score"] = podinfo.pod_requests(pod, non_zero=True)
        return True

    def score(self, state, pod, ni):
        req = state[self.name + ":score"]
        total = weights = 0
        for r, w in self.weights.items():
            alloc = ni.allocatable.get(r, 0)
            used = (ni.non_zero.get(r, 0) if r in ("cpu", "memory") else ni.requested.get(r, 0)) + req.get(r, 0)
            if not alloc:
                continue
            if self.most:
                total += (min(used, alloc) * MAX_NODE_SCORE // alloc) * w
            else:
                total += ((alloc - used) * MAX_NODE_SCORE // alloc if used <= alloc else 0) * w
            weights += w
        return total / weights if weights else 0


class NodeResourcesBalancedAllocation(Plugin):
    """Prefer nodes where CPU and memory would be used in equal fractions."""
    name = "NodeResourcesBalancedAllocation"

    def pre_score(self, state, pod, cache, nodes):
        state[self.name + ":score"] = podinfo.pod_requests(pod, non_zero=True)
        return True

    def score(self, state, pod, ni):
        req = state[self.name + ":score"]
        fractions = []
        for r in RESOURCE_WEIGHTS:
            alloc = ni.allocatable.get(r, 0)
            fractions.append(min(1.0, (ni.non_zero.get(r, 0) + req.get(r, 0)) / alloc) if alloc else 1.0)
        mean = sum(fractions) / len(fractions)
        std = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
        return (1 - std) * MAX_NODE_SCORE


class NodeAffinityScore(Plugin):
    """The sum of weights of the preferred node affinity terms a node matches."""
    name = "NodeAffinity"

    def pre_score(self, state, pod, cache, nodes):
        terms = (affinity(pod).get("nodeAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution")
        state[self.name + ":score"] = terms or []
        return bool(terms)

    def score(self, state, pod, ni):
        return sum(int(t.get("weight") or 0) for t in state[self.name + ":score"]
                   if podinfo.term_matches(t.get("preference") or {}, ni.node))

    def normalize(self, state, scores):
        normalize_by_max(scores)


class TaintTolerationScore(Plugin):
    """Fewer untolerated PreferNoSchedule taints is better."""
    name = "TaintToleration"

    def pre_score(self, state, pod, cache, nodes):
        state[self.name + ":score"] = [t for t in spec(pod).get("tolerations") or []
                            if t.get("effect") in (None, "", "PreferNoSchedule")]
        return True

    def score(self, state, pod, ni):
        return sum(1 for taint in ni.taints if taint.get("effect") == "PreferNoSchedule"
                   and not any(podinfo.tolerates(t, taint) for t in state[self.name + ":score"]))

    def normalize(self, state, scores):
        normalize_by_max(scores, reverse=True)


class InterPodAffinityScore(Plugin):
    """Preferred pod affinity adds, preferred anti-affinity subtracts, in the matching pods' domains;
    existing pods' preferences toward this pod count too (symmetry)."""
    name = "InterPodAffinity"

    def pre_score(self, state, pod, cache, nodes):
        mine = [(t, 1) for t in preferred_terms(pod, "podAffinity")] + \
               [(t, -1) for t in preferred_terms(pod, "podAntiAffinity")]
        if not mine and not cache.affinity_pods:
            return False
        ns, ns_labels = pod_namespace(pod), getattr(cache, "namespace_labels", {})
        domain_scores: dict[tuple[str, str], float] = {}

        def add(term: dict, weight: float, ni) -> None:
            key = term.get("topologyKey", "")
            value = ni.labels.get(key)
            if value is not None:
                domain_scores[(key, value)] = domain_scores.get((key, value), 0) + weight

        for ni in cache.ordered():
            for entry in ni.pods.values():
                other = entry.pod
                for weighted, sign in mine:
                    if term_matches_pod(weighted.get("podAffinityTerm") or {}, ns, other, ns_labels):
                        add(weighted["podAffinityTerm"], sign * int(weighted.get("weight") or 0), ni)
                if ni.affinity_pods:
                    for kind, sign in (("podAffinity", 1), ("podAntiAffinity", -1)):
                        for weighted in preferred_terms(other, kind):
                            term = weighted.get("podAffinityTerm") or {}
                            if term_matches_pod(term, pod_namespace(other), pod, ns_labels):
                                add(term, sign * int(weighted.get("weight") or 0), ni)
        state[self.name + ":score"] = domain_scores
        return bool(domain_scores)

    def score(self, state, pod, ni):
        return sum(w for (key, value), w in state[self.name + ":score"].items() if ni.labels.get(key) == value)

    def normalize(self, state, scores):
        normalize_min_max(scores)


def default_selector(pod: dict, cache) -> dict | None:
    """Which pods count as this pod's siblings for system-default spreading: its controller's pods
    (same controller uid), else those selected by the Services selecting it."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return {"controller-uid": ref.get("uid")}
    merged: dict[str, str] = {}
    for selector in getattr(cache, "service_selectors", {}).get(pod_namespace(pod), {}).values():
        if selector and all(podinfo.labels(pod).get(k) == v for k, v in selector.items()):
            merged.update(selector)
    return {"matchLabels": merged} if merged else None


def _controller_uid(pod: dict) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


class PodTopologySpreadScore(Plugin):
    """Prefer nodes whose domains hold fewer matching pods (ScheduleAnyway constraints, or the
    system defaults for a workload's pods that set no constraints)."""
    name = "PodTopologySpread"

    def pre_score(self, state, pod, cache, nodes):
        if spec(pod).get("topologySpreadConstraints"):
            constraints = spread_constraints(pod, "ScheduleAnyway")
            system = False
        else:
            selector = default_selector(pod, cache)
            if selector is None:
                return False
            constraints = [dict(c, labelSelector=selector) for c in SYSTEM_DEFAULT_CONSTRAINTS]
            system = True
        if not constraints:
            return False
        if system and "controller-uid" in constraints[0]["labelSelector"]:
            counts = self._counts_by_owner(pod, cache, constraints)
        else:
            counts = counts_by_domain(pod, cache, constraints, spread_node_filter(pod, constraints))
        weights = [topology_weight(len(c)) for c in counts]
        state[self.name + ":score"] = (constraints, counts, weights, system)
        return True

    @staticmethod
    def _counts_by_owner(pod: dict, cache, constraints: list[dict]) -> list[dict[str, int]]:
        uid = _controller_uid(pod)
        node_ok = spread_node_filter(pod, constraints)
        out: list[dict[str, int]] = [{} for _ in constraints]
        for ni in cache.ordered():
            if not node_ok(ni):
                continue
            n = sum(1 for e in ni.pods.values() if _controller_uid(e.pod) == uid
                    and not e.pod["metadata"].get("deletionTimestamp"))
            for i, c in enumerate(constraints):
                value = ni.labels.get(c["topologyKey"])
                if value is not None:
                    out[i][value] = out[i].get(value, 0) + n
        return out

    def score(self, state, pod, ni):
        constraints, counts, weights, system = state[self.name + ":score"]
        total = 0.0
        for c, domain_counts, w in zip(constraints, counts, weights):
            value = ni.labels.get(c["topologyKey"])
            if value is None:
                if not system:
                    return -1.0  # lacks a required key: scored lowest
                continue
            total += domain_counts.get(value, 0) * w + (int(c.get("maxSkew") or 1) - 1)
        return total

    def normalize(self, state, scores):
        valid = {k: v for k, v in scores.items() if v >= 0}
        normalize_min_max(valid, flip=True)
        for k in scores:
            scores[k] = valid.get(k, 0)


class ImageLocality(Plugin):
    """Prefer nodes that already have the pod's images, weighted by how widely they are spread."""
    name = "ImageLocality"

    def pre_score(self, state, pod, cache, nodes):
        images = [normalize_image(c["image"]) for c in spec(pod).get("containers") or [] if c.get("image")]
        total = max(1, len(cache.nodes))
        state[self.name + ":score"] = ([(i, cache.image_nodes.get(i, 0) / total) for i in images], len(images))
        return any(spread for _, spread in state[self.name + ":score"][0])

    def score(self, state, pod, ni):
        images, n = state[self.name + ":score"]
        size = sum(ni.images[i] * spread for i, spread in images if i in ni.images)
        high = IMAGE_MAX * max(1, n)
        size = min(max(size, IMAGE_MIN), high)
        return MAX_NODE_SCORE * (size - IMAGE_MIN) / (high - IMAGE_MIN)


SCORES: dict[str, type[Plugin]] = {p.name: p for p in (
    NodeResourcesFit, NodeResourcesBalancedAllocation, NodeAffinityScore, TaintTolerationScore,
    InterPodAffinityScore, PodTopologySpreadScore, ImageLocality)}

DEFAULT_WEIGHTS = {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
                   "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}

