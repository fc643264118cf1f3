"""netagent/policy: NetworkPolicies -> iptables filter chains for the pods on this node. Pure: the
agent feeds informer objects in and applies the result with ``policyfw``.

Semantics (networking.k8s.io/v1): a pod selected by a policy whose policyTypes include Ingress
(Egress) is isolated for that direction; then only traffic some selecting policy's rules allow
passes: a rule allows a peer (podSelector in the policy's namespace, namespaceSelector, both, or an
ipBlock with except) on a port (number, endPort range, protocol, or a name); a rule without peers
allows everyone, without ports every port. Replies of allowed connections always pass (conntrack).
A named port is a container port's name on the pod that receives the traffic: for ingress the
isolated pod itself, for egress each destination pod, so an egress rule's named port becomes one
rule per peer pod that has a port of that name and protocol (peers being the pods its selectors
name, the pods inside its ipBlocks, or every pod when it names no peer).

Chains: PROV-NP-FORWARD (from filter FORWARD) sends traffic to (``-d``) and from (``-s``) each
isolated local pod to its PROV-NP-IN-/PROV-NP-OUT-<hash> chain; there an allowing rule sets mark
0x8000, and unmarked traffic is dropped; ipBlock excepts live in PROV-NP-B-<hash> sub-chains.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
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
    # (name, protocol) -> number of every named container port, protocol lower case
    ports: dict = field(hash=False, compare=False, default_factory=dict)


def pod_info(pod: dict) -> PodInfo | None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or not status.get("podIP") or \
            status.get("phase") in ("Succeeded", "Failed"):
        return None
    ports = {(p["name"], (p.get("protocol") or "TCP").lower()): int(p["containerPort"])
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


def _protocol(port: dict) -> str:
    return (port.get("protocol") or "TCP").lower()


def _dport(protocol: str, span: str) -> str:
    return f"-p {protocol} -m {protocol} --dport {span}"


def _split_ports(rule: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """A rule's numbered port matches ([""]: every port) and its named ports (name, protocol)."""
    ports = rule.get("ports") or []
    if not ports:
        return [""], []
    numbered, named = [], []
    for port in ports:
        protocol, value = _protocol(port), port.get("port")
        if value is None:
            numbered.append(f"-p {protocol}")
        elif isinstance(value, str) and not value.isdigit():
            named.append((value, protocol))
        else:
            span = f"{value}:{port['endPort']}" if port.get("endPort") else f"{value}"
            numbered.append(_dport(protocol, span))
    return numbered, named


def _resolve(pod: PodInfo, name: str, protocol: str) -> str | None:
    """The dport match of a named port on one pod: its container port of that name and protocol."""
    number = pod.ports.get((name, protocol))
    return _dport(protocol, str(number)) if number else None


class _Builder:
    def __init__(self, pods: list[PodInfo], namespaces: dict[str, dict]):
        self.pods = pods
        self.namespaces = namespaces
        self.chains: dict[str, list[str]] = {}

    def selected(self, peer: dict, policy_ns: str) -> list[PodInfo]:
        """The pods a podSelector/namespaceSelector peer names."""
        ns_selector = peer.get("namespaceSelector")
        allowed_ns = {name for name, labels in self.namespaces.items()
                      if matches(ns_selector, labels)} if ns_selector is not None else {policy_ns}
        pod_selector = peer.get("podSelector")
        return [pod for pod in self.pods if pod.namespace in allowed_ns and
                (pod_selector is None or matches(pod_selector, pod.labels))]

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
            found += [("match", f"{flag} {pod.ip}/32") for pod in self.selected(peer, policy_ns)]
        return sorted(set(found))

    def peer_pods(self, peers: list[dict] | None, policy_ns: str) -> list[PodInfo]:
        """The pods among an egress rule's peers: every pod when the rule names no peer, the pods
        inside an ipBlock (outside its excepts), the pods selectors name."""
        if not peers:
            return list(self.pods)
        found: dict[str, PodInfo] = {}
        for peer in peers:
            if peer.get("ipBlock"):
                block = peer["ipBlock"]
                try:
                    inside = ipaddress.ip_network(block["cidr"], strict=False)
                    excepts = [ipaddress.ip_network(cidr, strict=False)
                               for cidr in block.get("except") or ()]
                except ValueError:          # the API server validates CIDRs; never fail the rest
                    continue
                for pod in self.pods:
                    address = ipaddress.ip_address(pod.ip)
                    if address in inside and not any(address in cut for cut in excepts):
                        found[pod.ip] = pod
                continue
            found.update((pod.ip, pod) for pod in self.selected(peer, policy_ns))
        return [found[ip] for ip in sorted(found)]

    def direction(self, chain: str, rules: list[tuple[dict, str]], key: str, flag: str,
                  target: PodInfo) -> list[str]:
        """Ingress (flag -s): a named port is the target pod's own container port. Egress (-d):
        it is each destination pod's, so it becomes one rule per peer pod that names it."""
        ingress = flag == "-s"
        lines = [f"-A {chain} -j MARK --set-xmark 0x0/{MARK}"]
        allow = f"-j MARK --set-xmark {MARK}/{MARK}"
        for rule, policy_ns in rules:
            peers = rule.get("from" if ingress else "to")
            ports, named = _split_ports(rule)
            if ingress:
                ports = ports + [found for name, protocol in named
                                 if (found := _resolve(target, name, protocol))]
            elif named:
                for pod in self.peer_pods(peers, policy_ns):
                    for name, protocol in named:
                        if found := _resolve(pod, name, protocol):
                            lines.append(f"-A {chain} -d {pod.ip}/32 {found} {allow}")
            for peer in self.peers(peers, policy_ns, flag) if ports else ():
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
