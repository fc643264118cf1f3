"""Filter plugins: can this pod run on this node? One class per kube-scheduler plugin, same names,
same reason strings. FILTERS is the table the configuration enables plugins from.
"""

from __future__ import annotations

from . import podinfo
from .framework import Plugin, unresolvable, unschedulable

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def spec(pod: dict) -> dict:
    return pod.get("spec") or {}


def affinity(pod: dict) -> dict:
    return spec(pod).get("affinity") or {}


def pod_namespace(pod: dict) -> str:
    return pod["metadata"].get("namespace", "")


# -- pod affinity terms ---------------------------------------------------------------------------
def term_matches_pod(term: dict, owner_ns: str, other: dict, ns_labels: dict[str, dict]) -> bool:
    """Does an affinity term written in `owner_ns` select pod `other`?"""
    names = term.get("namespaces") or []
    selector = term.get("namespaceSelector")
    ns = pod_namespace(other)
    if not names and selector is None:
        ns_ok = ns == owner_ns
    else:
        ns_ok = ns in names or (selector is not None and podinfo.selector_matches(selector, ns_labels.get(ns, {})))
    return ns_ok and podinfo.selector_matches(term.get("labelSelector"), podinfo.labels(other))


def required_terms(pod: dict, kind: str) -> list[dict]:
    return (affinity(pod).get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []


def preferred_terms(pod: dict, kind: str) -> list[dict]:
    return (affinity(pod).get(kind) or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []


# -- plugins --------------------------------------------------------------------------------------
class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"

    def filter(self, state, pod, ni):
        if (ni.node.get("spec") or {}).get("unschedulable") and not any(
                podinfo.tolerates(t, UNSCHEDULABLE_TAINT) for t in spec(pod).get("tolerations") or []):
            return unresolvable("node(s) were unschedulable")
        return None


class NodeName(Plugin):
    name = "NodeName"

    def pre_filter(self, state, pod, cache):
        return bool(spec(pod).get("nodeName"))

    def filter(self, state, pod, ni):
        if spec(pod)["nodeName"] != ni.name:
            return unresolvable("node(s) didn't match the requested node name")
        return None


class TaintToleration(Plugin):
    name = "TaintToleration"

    def filter(self, state, pod, ni):
        if not ni.taints:
            return None
        taint = podinfo.untolerated(ni.taints, spec(pod).get("tolerations") or [], ("NoSchedule", "NoExecute"))
        if taint is not None:
            return unresolvable(f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}")
        return None


class NodeAffinity(Plugin):
    name = "NodeAffinity"

    def pre_filter(self, state, pod, cache):
        required = (affinity(pod).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        state[self.name] = (spec(pod).get("nodeSelector") or {}, required)
        return bool(state[self.name][0] or required)

    def filter(self, state, pod, ni):
        if not self.matches(state[self.name], ni.node, ni.labels):
            return unresolvable("node(s) didn't match Pod's node affinity/selector")
        return None

    @staticmethod
    def matches(selector_and_required: tuple, node: dict, labels: dict) -> bool:
        selector, required = selector_and_required
        if any(labels.get(k) != v for k, v in selector.items()):
            return False
        return required is None or podinfo.node_selector_matches(required, node)


class NodePorts(Plugin):
    name = "NodePorts"

    def pre_filter(self, state, pod, cache):
        state[self.name] = podinfo.host_ports(pod)
        return bool(state[self.name])

    def filter(self, state, pod, ni):
        for wanted in state[self.name]:
            if any(podinfo.ports_conflict(wanted, used) for used in ni.ports):
                return unschedulable("node(s) didn't have free ports for the requested pod ports")
        return None


class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"

    def pre_filter(self, state, pod, cache):
        state[self.name] = ({r: v for r, v in podinfo.pod_requests(pod).items() if v > 0},
                            podinfo.priority(pod), cache)
        return True

    def filter(self, state, pod, ni):
        requests, prio, cache = state[self.name]
        extra: dict[str, int] = {}
        pods = len(ni.pods) + 1
        # room promised to higher-priority pods nominated here by preemption is not free
        for other in cache.nominated_on(ni.name) if cache is not None and cache.nominated else ():
            if podinfo.priority(other) >= prio and other["metadata"].get("uid") != pod["metadata"].get("uid"):
                podinfo.add_amounts(extra, podinfo.pod_requests(other))
                pods += 1
        reasons = []
        if pods > ni.allocatable.get("pods", 110):
            reasons.append("Too many pods")
        for r, v in requests.items():
            if v + ni.requested.get(r, 0) + extra.get(r, 0) > ni.allocatable.get(r, 0):
                reasons.append(f"Insufficient {r}")
        return unschedulable(*reasons) if reasons else None


def spread_constraints(pod: dict, when: str) -> list[dict]:
    return [c for c in spec(pod).get("topologySpreadConstraints") or [] if c.get("whenUnsatisfiable") == when]


def constraint_selector(pod: dict, constraint: dict) -> dict | None:
    """The constraint's labelSelector, narrowed by matchLabelKeys (values taken from the pod)."""
    selector = constraint.get("labelSelector")
    keys = constraint.get("matchLabelKeys") or []
    if selector is None or not keys:
        return selector
    lbls = podinfo.labels(pod)
    extra = [{"key": k, "operator": "In", "values": [lbls[k]]} for k in keys if k in lbls]
    return dict(selector, matchExpressions=(selector.get("matchExpressions") or []) + extra)


def counts_by_domain(pod: dict, cache, constraints: list[dict], node_filter) -> list[dict[str, int]]:
    """For each constraint, matching pods per topology value, over nodes passing node_filter."""
    ns = pod_namespace(pod)
    selectors = [constraint_selector(pod, c) for c in constraints]
    out: list[dict[str, int]] = [{} for _ in constraints]
    for ni in cache.ordered():
        if not node_filter(ni):
            continue
        for i, c in enumerate(constraints):
            value = ni.labels.get(c["topologyKey"])
            if value is None:
                continue
            n = sum(1 for e in ni.pods.values()
                    if pod_namespace(e.pod) == ns and not e.pod["metadata"].get("deletionTimestamp")
                    and podinfo.selector_matches(selectors[i], podinfo.labels(e.pod)))
            out[i][value] = out[i].get(value, 0) + n
    return out


def spread_node_filter(pod: dict, constraint_list: list[dict]):
    """Nodes counted for spreading: those passing the pod's nodeSelector/affinity (policy Honor)."""
    na = NodeAffinity()
    st: dict = {}
    check = na.pre_filter(st, pod, None)
    honor = [c.get("nodeAffinityPolicy", "Honor") == "Honor" for c in constraint_list]
    if not check or not any(honor):
        return lambda ni: True
    return lambda ni: NodeAffinity.matches(st[na.name], ni.node, ni.labels)


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"

    def pre_filter(self, state, pod, cache):
        constraints = spread_constraints(pod, "DoNotSchedule")
        if not constraints:
            return False
        counts = counts_by_domain(pod, cache, constraints, spread_node_filter(pod, constraints))
        self_match = [podinfo.selector_matches(constraint_selector(pod, c), podinfo.labels(pod)) for c in constraints]
        minimums = []
        for c, domain_counts in zip(constraints, counts):
            too_few_domains = len(domain_counts) < int(c.get("minDomains") or 1)
            minimums.append(0 if too_few_domains or not domain_counts else min(domain_counts.values()))
        state[self.name] = (constraints, counts, self_match, minimums)
        return True

    def filter(self, state, pod, ni):
        constraints, counts, self_match, minimums = state[self.name]
        for c, domain_counts, me, low in zip(constraints, counts, self_match, minimums):
            value = ni.labels.get(c["topologyKey"])
            if value is None:
                return unresolvable("node(s) didn't match pod topology spread constraints (missing required label)")
            if domain_counts.get(value, 0) + me - low > int(c.get("maxSkew") or 1):
                return unschedulable("node(s) didn't match pod topology spread constraints")
        return None


class InterPodAffinity(Plugin):
    name = "InterPodAffinity"

    def pre_filter(self, state, pod, cache):
        affinity_terms = required_terms(pod, "podAffinity")
        anti_terms = required_terms(pod, "podAntiAffinity")
        if not affinity_terms and not anti_terms and not cache.anti_affinity_pods:
            return False
        ns, ns_labels = pod_namespace(pod), getattr(cache, "namespace_labels", {})
        existing_anti: set[tuple[str, str]] = set()  # (key, value) where existing pods repel this pod
        affinity_counts: list[dict[str, int]] = [{} for _ in affinity_terms]
        anti_domains: set[tuple[str, str]] = set()
        for ni in cache.ordered():
            if not ni.pods:
                continue
            for entry in ni.pods.values():
                other = entry.pod
                if ni.anti_affinity_pods:
                    for term in required_terms(other, "podAntiAffinity"):
                        value = ni.labels.get(term.get("topologyKey", ""))
                        if value is not None and term_matches_pod(term, pod_namespace(other), pod, ns_labels):
                            existing_anti.add((term["topologyKey"], value))
                for i, term in enumerate(affinity_terms):
                    value = ni.labels.get(term.get("topologyKey", ""))
                    if value is not None and term_matches_pod(term, ns, other, ns_labels):
                        affinity_counts[i][value] = affinity_counts[i].get(value, 0) + 1
                for term in anti_terms:
                    value = ni.labels.get(term.get("topologyKey", ""))
                    if value is not None and term_matches_pod(term, ns, other, ns_labels):
                        anti_domains.add((term["topologyKey"], value))
        # the first pod of a group that selects itself may go anywhere its terms' keys exist
        first_of_group = (affinity_terms and not any(affinity_counts)
                          and all(term_matches_pod(t, ns, pod, ns_labels) for t in affinity_terms))
        state[self.name] = (affinity_terms, affinity_counts, anti_domains, existing_anti, first_of_group)
        return True

    def filter(self, state, pod, ni):
        affinity_terms, affinity_counts, anti_domains, existing_anti, first_of_group = state[self.name]
        for key, value in existing_anti:
            if ni.labels.get(key) == value:
                return unschedulable("node(s) didn't satisfy existing pods anti-affinity rules")
        for term, domain_counts in zip(affinity_terms, affinity_counts):
            value = ni.labels.get(term.get("topologyKey", ""))
            if value is None or (not first_of_group and not domain_counts.get(value)):
                return unresolvable("node(s) didn't match pod affinity rules")
        for key, value in anti_domains:
            if ni.labels.get(key) == value:
                return unschedulable("node(s) didn't match pod anti-affinity rules")
        return None


# In kube-scheduler's default order: cheap, decisive checks first.
FILTERS: dict[str, type[Plugin]] = {p.name: p for p in (
    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
    PodTopologySpread, InterPodAffinity)}

