"""The plugin interface and what plugins return, shared by filters.py, scores.py and the scheduler.

A plugin is a class with any of: `pre_filter(state, pod, cache) -> bool` (False: this plugin has
nothing to check for this pod, skip its filter), `filter(state, pod, node_info) -> Failure | None`,
`pre_score(state, pod, cache, nodes) -> bool`, `score(state, pod, node_info) -> float` and
`normalize(state, scores)` (in place, to 0..MAX_NODE_SCORE). `state` is a dict living for one
scheduling attempt, where a plugin keeps what its pre_* step computed for the pod.

A Failure carries kube-scheduler's reason strings (they end up in FailedScheduling events) and
whether preemption could help (`unresolvable` nodes are never preemption candidates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_NODE_SCORE = 100


@dataclass(frozen=True)
class Failure:
    reasons: tuple[str, ...]
    unresolvable: bool = False


def unresolvable(reason: str) -> Failure:
    return Failure((reason,), True)


def unschedulable(*reasons: str) -> Failure:
    return Failure(tuple(reasons), False)


class Plugin:
    name = ""

    def __init__(self, args: dict | None = None) -> None:
        self.args = args or {}  # the profile's pluginConfig args for this plugin

    def pre_filter(self, state: dict, pod: dict, cache) -> bool:
        return True

    def pre_score(self, state: dict, pod: dict, cache, nodes: list) -> bool:
        return True

    def normalize(self, state: dict, scores: dict[str, float]) -> None:
        return None


def normalize_by_max(scores: dict[str, float], reverse: bool = False) -> None:
    """kube-scheduler's DefaultNormalizeScore: scale so the best is 100 (or flip when reverse)."""
    top = max(scores.values(), default=0)
    if top == 0:
        if reverse:
            for k in scores:
                scores[k] = MAX_NODE_SCORE
        return
    for k, v in scores.items():
        s = v * MAX_NODE_SCORE / top
        scores[k] = MAX_NODE_SCORE - s if reverse else s


def normalize_min_max(scores: dict[str, float], flip: bool = False) -> None:
    if not scores:
        return
    lo, hi = min(scores.values()), max(scores.values())
    for k, v in scores.items():
        if hi == lo:
            scores[k] = MAX_NODE_SCORE if flip else 0
        else:
            scores[k] = round(((hi - v) if flip else (v - lo)) * MAX_NODE_SCORE / (hi - lo), 6)


def topology_weight(domains: int) -> float:
    """PodTopologySpread weighs a constraint by log(number of domains + 2)."""
    return math.log(domains + 2)


def fit_error_message(total_nodes: int, failures: dict[str, Failure], post_filter: str = "") -> str:
    """kube-scheduler's FitError text: '0/3 nodes are available: 1 ..., 2 Insufficient cpu.'"""
    counts: dict[str, int] = {}
    for failure in failures.values():
        for reason in failure.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    msg = f"0/{total_nodes} nodes are available:"
    if parts:
        msg += f" {', '.join(parts)}."
    if post_filter:
        msg += f" {post_filter}."
    return msg
