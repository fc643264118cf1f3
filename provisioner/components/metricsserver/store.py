"""metrics-server: the last two samples of every node and container, and the metrics built from them.

CPU usage is a rate: the difference of two cumulative readings over the time between them (the
kubelet's own timestamps), as metrics-server computes it; a container that restarted in between
counts from its start time. Memory is the latest working set. A node or pod is reported only once
two samples exist, so a fresh server answers NotFound for a scrape interval, as metrics-server does.
Fed by scraper.py, read by api.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

API_VERSION = "metrics.k8s.io/v1beta1"


@dataclass(frozen=True)
class Point:
    timestamp: float  # seconds since the epoch, as the kubelet read it
    cpu: float        # cumulative core-seconds
    memory: int       # working set bytes
    start: float = 0.0  # the container's start time (0: unknown, or a node)


@dataclass
class NodeSample:
    """One scrape of one kubelet: the node's point and each container's, keyed (ns, pod, container)."""
    node: Point | None
    containers: dict[tuple[str, str, str], Point] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    timestamp: float
    window: float
    cpu_nanocores: int
    memory_bytes: int


def usage(prev: Point | None, last: Point) -> Usage | None:
    if prev is None or last.timestamp <= prev.timestamp:
        return None
    base_time, base_cpu = prev.timestamp, prev.cpu
    if last.cpu < prev.cpu or (last.start and last.start > prev.timestamp):  # restarted in between
        if not last.start or last.start >= last.timestamp:
            return None
        base_time, base_cpu = last.start, 0.0
    window = last.timestamp - base_time
    return Usage(last.timestamp, window, int(max(last.cpu - base_cpu, 0.0) / window * 1e9), last.memory)


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def usage_doc(u: Usage) -> dict:
    return {"cpu": f"{u.cpu_nanocores}n", "memory": f"{u.memory_bytes // 1024}Ki"}


class Store:
    def __init__(self) -> None:
        self.nodes: dict[str, tuple[Point | None, Point]] = {}
        self.containers: dict[str, dict[tuple[str, str, str], tuple[Point | None, Point]]] = {}  # by node

    def store(self, batch: dict[str, NodeSample]) -> None:
        """A scrape round: nodes absent from it (failed or gone) lose their metrics."""
        nodes, containers = {}, {}
        for name, sample in batch.items():
            if sample.node is not None:
                old = self.nodes.get(name)
                nodes[name] = _advance(old, sample.node)
            old_containers = self.containers.get(name, {})
            containers[name] = {key: _advance(old_containers.get(key), point)
                                for key, point in sample.containers.items()}
        self.nodes, self.containers = nodes, containers

    # reading ---------------------------------------------------------------------------------
    def node_usage(self, name: str) -> Usage | None:
        pair = self.nodes.get(name)
        return usage(*pair) if pair else None

    def pod_usage(self, namespace: str, pod: str) -> list[tuple[str, Usage]] | None:
        """(container, usage) for every container of the pod, or None unless each has a rate."""
        found: list[tuple[str, Usage]] = []
        complete = True
        for per_node in self.containers.values():
            for (ns, name, container), pair in per_node.items():
                if (ns, name) == (namespace, pod):
                    u = usage(*pair)
                    if u is None:
                        complete = False
                    else:
                        found.append((container, u))
        return sorted(found) if found and complete else None

    def pods_with_metrics(self) -> set[tuple[str, str]]:
        return {(ns, pod) for per_node in self.containers.values() for ns, pod, _ in per_node}

    def node_metrics(self, node: dict) -> dict | None:
        meta = node.get("metadata") or {}
        u = self.node_usage(meta.get("name", ""))
        if u is None:
            return None
        return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": meta["name"], "creationTimestamp": _rfc3339(u.timestamp),
                             "labels": dict(meta.get("labels") or {})},
                "timestamp": _rfc3339(u.timestamp), "window": _window(u.window), "usage": usage_doc(u)}

    def pod_metrics(self, pod: dict) -> dict | None:
        meta = pod.get("metadata") or {}
        containers = self.pod_usage(meta.get("namespace", ""), meta.get("name", ""))
        if not containers:
            return None
        newest = max(containers, key=lambda c: c[1].timestamp)[1]
        return {"kind": "PodMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""),
                             "creationTimestamp": _rfc3339(newest.timestamp),
                             "labels": dict(meta.get("labels") or {})},
                "timestamp": _rfc3339(newest.timestamp), "window": _window(newest.window),
                "containers": [{"name": name, "usage": usage_doc(u)} for name, u in containers]}


def _advance(old: tuple[Point | None, Point] | None, new: Point) -> tuple[Point | None, Point]:
    """The pair after a new reading; a reading no newer than the last one changes nothing."""
    if old is None:
        return (None, new)
    if new.timestamp <= old[1].timestamp:
        return old
    return (old[1], new)
