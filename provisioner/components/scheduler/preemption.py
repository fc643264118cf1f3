"""DefaultPreemption: when a pod fits nowhere, find a node where evicting lower-priority pods makes
room, with the fewest and least important victims.

For every node that failed for a reason eviction could fix (not taints, selectors or a missing
label), the lower-priority pods are taken off a copy of the node; if the pod then fits, victims are
"reprieved" one by one, most important first, while it still fits. The node chosen has the lowest
highest-victim priority, then the lowest sum of victim priorities, then the fewest victims.

Each what-if re-runs the pod's pre-filters on a view of the cluster in which the trial node
replaces the real one, so victims whose removal satisfies topology spreading or (anti-)affinity
count too. As in kube-scheduler, the search stops once max(100, 10% of nodes) candidates are found.
PodDisruptionBudgets are not consulted.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import podinfo
from .cache import Cache, NodeInfo, pod_key
from .framework import Failure

NOT_HELPFUL = "Preemption is not helpful for scheduling"
MIN_CANDIDATES_ABSOLUTE = 100
MIN_CANDIDATES_PERCENT = 10
NO_VICTIMS = "No preemption victims found for incoming pod"


class WhatIf:
    """The cache as the plugins see it, with one node replaced by a trial copy."""

    def __init__(self, cache: Cache, trial: NodeInfo) -> None:
        self._cache, self._trial = cache, trial

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def ordered(self) -> list[NodeInfo]:
        return [self._trial if ni.name == self._trial.name else ni for ni in self._cache.ordered()]

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        return dict(self._cache.nodes, **{self._trial.name: self._trial})


@dataclass
class Candidate:
    node: str
    victims: list[dict]

    def rank(self) -> tuple:
        prios = [podinfo.priority(v) for v in self.victims]
        return (max(prios, default=-(2**31)), sum(prios), len(prios))


def eligible(pod: dict, cache: Cache) -> bool:
    """kube-scheduler's PodEligibleToPreemptOthers: not with preemptionPolicy Never, and not while
    victims of an earlier preemption for this pod are still terminating on its nominated node."""
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return False
    nominated = (pod.get("status") or {}).get("nominatedNodeName")
    ni = cache.nodes.get(nominated) if nominated else None
    if ni is not None:
        prio = podinfo.priority(pod)
        if any(e.pod["metadata"].get("deletionTimestamp") and podinfo.priority(e.pod) < prio
               for e in ni.pods.values()):
            return False
    return True


def select_victims(pod: dict, ni: NodeInfo, fits) -> list[dict] | None:
    """The victims on one node, or None when evicting every lower-priority pod would not help."""
    prio = podinfo.priority(pod)
    trial = ni.clone()
    potential = [e.pod for e in trial.pods.values()
                 if podinfo.priority(e.pod) < prio and not e.pod["metadata"].get("deletionTimestamp")]
    if not potential:
        return None
    for victim in potential:
        trial.remove_pod(pod_key(victim))
    if not fits(trial):
        return None
    potential.sort(key=lambda p: (-podinfo.priority(p), p["metadata"].get("creationTimestamp", "")))
    victims = []
    for victim in potential:
        trial.add_pod(victim)
        if not fits(trial):
            trial.remove_pod(pod_key(victim))
            victims.append(victim)
    return victims


def find(pod: dict, cache: Cache, failures: dict[str, Failure], fits) -> tuple[Candidate | None, str]:
    """The best candidate, or None and kube-scheduler's 'preemption: ...' explanation."""
    reasons: dict[str, int] = {}
    candidates = []
    enough = max(MIN_CANDIDATES_ABSOLUTE, len(cache.nodes) * MIN_CANDIDATES_PERCENT // 100)
    for name, failure in failures.items():
        if len(candidates) >= enough:
            break
        ni = cache.nodes.get(name)
        if failure.unresolvable or ni is None:
            reasons[NOT_HELPFUL] = reasons.get(NOT_HELPFUL, 0) + 1
            continue
        victims = select_victims(pod, ni, fits)
        if not victims:
            reasons[NO_VICTIMS] = reasons.get(NO_VICTIMS, 0) + 1
            continue
        candidates.append(Candidate(name, victims))
    if candidates:
        return min(candidates, key=Candidate.rank), ""
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    return None, f"preemption: 0/{len(cache.nodes)} nodes are available: {', '.join(parts)}"
