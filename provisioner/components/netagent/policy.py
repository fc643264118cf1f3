"""netagent/policy: NetworkPolicies -> iptables filter chains for the pods on this node. Pure: the
agent feeds informer objects in and applies the result with ``policyfw``.

Semantics (networking.k8s.io/v1): a pod selected by a policy whose policyTypes include Ingress
(Egress) is isolated for that direction; then only traffic some selecting policy's rules allow
passes: a rule allows a peer (podSelector in the policy's namespace, namespaceSelector, both, or an
ipBlock with except) on a port (number, name of the pod's container port for ingress, endPort
range, protocol); a rule without peers allows everyone, without ports every port. Replies of
allowed connections always pass (conntrack).

Chains: PROV-NP-FORWARD (from filter FORWARD) sends traffic to (``-d``) and from (``-s``) each
isolated local pod to its PROV-NP-IN-/PROV-NP-OUT-<hash> chain; there an allowing rule sets mark
0x8000, and unmarked traffic is dropped; ipBlock excepts live in PROV-NP-B-<hash> sub-chains.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

TOP_CHAIN = "PROV-NP-FORWARD"
CHAIN_PREFIX = "PROV-NP-"
MARK = "0x8000"


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str
    node: str
    labels: dict = field(hash=False, compare=False, default_factory=dict)
    ports: dict = field(hash=False, compare=False, default_factory=dict)  # name -> (port, proto)


def pod_info(pod: dict) -> PodInfo | None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or not status.get("podIP") or \
            status.get("phase") in ("Succeeded", "Failed"):
        return None
    ports = {p["name"]: (int(p["containerPort"]), (p.get("protocol") or "TCP").lower())
             for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("name")}
    return PodInfo(meta.get("namespace", "default"), meta.get("name", ""), status["podIP"],
                   spec.get("nodeName", ""), dict(meta.get("labels") or {}), ports)


def matches(selector: dict | None, labels: dict) -> bool:
    """A label selector ({} matches everything)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _port_matches(rule: dict, target: PodInfo | None) -> list[str] | None:
    """iptables port matches of a rule; None when a named port cannot be resolved (skip it)."""
    ports = rule.get("ports") or []
    if not ports:
        return [""]
    found = []
    for port in ports:
        protocol = (port.get("protocol") or "TCP").lower()
        value = port.get("port")
        if value is None:
            found.append(f"-p {protocol}")
            continue
        if isinstance(value, str) and not value.isdigit():
            named = target.ports.get(value) if target else None
            if not named:
                continue
            value, protocol = named
        span = f"{value}:{port['endPort']}" if port.get("endPort") else f"{value}"
        found.append(f"-p {protocol} -m {protocol} --dport {span}")
    return found or None


class _Builder:
    def __init__(self, pods: list[PodInfo], namespaces: dict[str, dict]):
        self.pods = pods
        self.namespaces = namespaces
        self.chains: dict[str, list[str]] = {}

    def peers(self, peers: list[dict] | None, policy_ns: str, flag: str) -> list[tuple]:
        """("match", text) or ("block", cidr, excepts) per allowed peer; [("all",)] for any."""
        if not peers:
            return [("all",)]
        found: list[tuple] = []
        for peer in peers:
            if peer.get("ipBlock"):
                block = peer["ipBlock"]
                found.append(("block", block["cidr"], tuple(block.get("except") or ())))
                continue
            ns_selector = peer.get("namespaceSelector")
            allowed_ns = {name for name, labels in self.namespaces.items()
                          if matches(ns_selector, labels)} if ns_selector is not None \
                else {policy_ns}
            pod_selector = peer.get("podSelector")
            for pod in self.pods:
                if pod.namespace in allowed_ns and \
                        (pod_selector is None or matches(pod_selector, pod.labels)):
                    found.append(("match", f"{flag} {pod.ip}/32"))
        return sorted(set(found))

    def direction(self, chain: str, rules: list[tuple[dict, str]], key: str, flag: str,
                  target: PodInfo | None) -> list[str]:
        lines = [f"-A {chain} -j MARK --set-xmark 0x0/{MARK}"]
        allow = f"-j MARK --set-xmark {MARK}/{MARK}"
        for rule, policy_ns in rules:
            ports = _port_matches(rule, target if flag == "-s" else None)
            if ports is None:
                continue
            for peer in self.peers(rule.get("from" if flag == "-s" else "to"), policy_ns, flag):
                for port in ports:
                    if peer[0] == "all":
                        lines.append(f"-A {chain} {port} {allow}".replace("  ", " "))
                    elif peer[0] == "match":
                        lines.append(f"-A {chain} {peer[1]} {port} {allow}".replace("  ", " "))
                    else:
                        block = CHAIN_PREFIX + "B-" + _hash(f"{key}|{peer[1]}|{peer[2]}|{port}")
                        self.chains[block] = [f"-A {block} {flag} {cidr} -j RETURN"
                                              for cidr in peer[2]] + [f"-A {block} {allow}"]
                        lines.append(f"-A {chain} {flag} {peer[1]} {port} -j {block}"
                                     .replace("  ", " "))
        lines += [f"-A {chain} -m mark --mark {MARK}/{MARK} -j RETURN", f"-A {chain} -j DROP"]
        return lines


def build(policies: list[dict], pods: list[dict], namespaces: list[dict],
          node: str) -> dict[str, list[str]]:
    """Every PROV-NP-* chain with its rules (just the top chain when nothing is isolated)."""
    infos = [info for info in map(pod_info, pods) if info]
    labels = {(n.get("metadata") or {}).get("name", ""): dict((n.get("metadata") or {})
                                                             .get("labels") or {})
              for n in namespaces}
    builder = _Builder(infos, labels)
    top = [f"-A {TOP_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
    for pod in sorted((p for p in infos if p.node == node), key=lambda p: (p.namespace, p.name)):
        key = f"{pod.namespace}/{pod.name}"
        selecting = [policy for policy in policies
                     if (policy.get("metadata") or {}).get("namespace") == pod.namespace
                     and matches((policy.get("spec") or {}).get("podSelector") or {}, pod.labels)]
        for kind, flag, field_name, prefix in (("Ingress", "-s", "ingress", "IN-"),
                                               ("Egress", "-d", "egress", "OUT-")):
            applying = [policy for policy in selecting if kind in policy_types(policy)]
            if not applying:
                continue
            chain = CHAIN_PREFIX + prefix + _hash(key)
            rules = [(rule, pod.namespace) for policy in applying
                     for rule in (policy.get("spec") or {}).get(field_name) or []]
            builder.chains[chain] = builder.direction(chain, rules, key + prefix, flag, pod)
            where = "-d" if kind == "Ingress" else "-s"
            top.append(f"-A {TOP_CHAIN} {where} {pod.ip}/32 -j {chain}")
    return {TOP_CHAIN: top, **builder.chains}
