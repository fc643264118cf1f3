"""What the scheduler reads from pods and nodes: resource requests, host ports, selectors, taints.

Pure functions over plain dicts, shared by the filter and score plugins and by preemption.
Requests follow Kubernetes' rules: the larger of the app containers' sum and each init container
(restartable "sidecar" init containers run alongside, so they add up), plus the pod's overhead.
CPU is counted in millicores, everything else in whole units.
"""

from __future__ import annotations

from provisioner.components.api import quantity

DEFAULT_MILLI_CPU = 100  # what a container without requests counts as when scoring (not when fitting)
DEFAULT_MEMORY = 200 * 1024 * 1024
NODE_NAME_FIELD = "metadata.name"


def _amount(resource: str, value: str | int | float) -> int:
    return quantity.milli(value) if resource == "cpu" else quantity.whole(value)


def _container_requests(container: dict) -> dict[str, int]:
    res = container.get("resources") or {}
    # a container with limits but no requests requests its limits (API defaulting does the same)
    merged = dict(res.get("limits") or {}, **(res.get("requests") or {}))
    return {r: _amount(r, v) for r, v in merged.items()}


def add_amounts(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for r, v in more.items():
        into[r] = into.get(r, 0) + v
    return into


def max_amounts(into: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    for r, v in other.items():
        if v > into.get(r, 0):
            into[r] = v
    return into


def pod_requests(pod: dict, non_zero: bool = False) -> dict[str, int]:
    """Effective requests; with non_zero, unset CPU/memory count as 100m/200Mi (for scoring)."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        req = _container_requests(c)
        if non_zero:
            req.setdefault("cpu", DEFAULT_MILLI_CPU)
            req.setdefault("memory", DEFAULT_MEMORY)
        add_amounts(total, req)
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            add_amounts(sidecars, req)
            max_amounts(init_peak, dict(sidecars))
        else:
            max_amounts(init_peak, add_amounts(dict(sidecars), req))
    add_amounts(total, sidecars)
    max_amounts(total, init_peak)
    for r, v in (spec.get("overhead") or {}).items():
        total[r] = total.get(r, 0) + _amount(r, v)
    return total


def host_ports(pod: dict) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) for every container port that claims a host port."""
    out = []
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"])))
    return out


def ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    wildcard = "0.0.0.0"
    return a[1] == b[1] and a[2] == b[2] and (a[0] == b[0] or wildcard in (a[0], b[0]))


def priority(pod: dict) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def labels(obj: dict) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# -- label selectors (metav1.LabelSelector) ------------------------------------------------------
_SELECTOR_OPS = {
    "In": lambda has, v, vals: has and v in vals,
    "NotIn": lambda has, v, vals: not has or v not in vals,
    "Exists": lambda has, v, vals: has,
    "DoesNotExist": lambda has, v, vals: not has,
}


def selector_matches(selector: dict | None, lbls: dict[str, str]) -> bool:
    """A LabelSelector; None matches nothing, {} matches everything (as in pod affinity terms)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if lbls.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        key = req.get("key", "")
        op = _SELECTOR_OPS.get(req.get("operator", ""))
        if op is None or not op(key in lbls, lbls.get(key), req.get("values") or ()):
            return False
    return True


# -- node selectors (core/v1 NodeSelectorTerm) ---------------------------------------------------
def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _gt(has: bool, v: str | None, vals: list) -> bool:
    a, b = _int_or_none(v), _int_or_none(vals[0] if len(vals) == 1 else None)
    return a is not None and b is not None and a > b


def _lt(has: bool, v: str | None, vals: list) -> bool:
    a, b = _int_or_none(v), _int_or_none(vals[0] if len(vals) == 1 else None)
    return a is not None and b is not None and a < b


_NODE_OPS = dict(_SELECTOR_OPS, Gt=_gt, Lt=_lt)


def _requirements_match(reqs: list[dict], values: dict[str, str]) -> bool:
    for req in reqs:
        key = req.get("key", "")
        op = _NODE_OPS.get(req.get("operator", ""))
        if op is None or not op(key in values, values.get(key), req.get("values") or []):
            return False
    return True


def term_matches(term: dict, node: dict) -> bool:
    """One NodeSelectorTerm: all its expressions and fields must hold; an empty term matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return (_requirements_match(exprs, labels(node))
            and _requirements_match(fields, {NODE_NAME_FIELD: node["metadata"]["name"]}))


def node_selector_matches(node_selector: dict, node: dict) -> bool:
    """A NodeSelector: any one of its terms."""
    return any(term_matches(t, node) for t in node_selector.get("nodeSelectorTerms") or [])


# -- taints and tolerations -----------------------------------------------------------------------
def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"  # an empty key with Exists tolerates everything
    if toleration["key"] != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints: list[dict], tolerations: list[dict], effects: tuple[str, ...]) -> dict | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None
