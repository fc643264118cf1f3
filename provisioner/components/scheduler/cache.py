"""The scheduler's view of the cluster: one NodeInfo per node with the pods placed on it.

Filled from the node and pod informers, plus "assumed" pods: a pod is counted on its chosen node
the moment the scheduler decides, before its binding is written, so the next pod already sees the
space as taken (binding happens in the background). When the bound pod comes back through the
watch the assumption is confirmed; a failed binding forgets it.

Pods nominated to a node by preemption are remembered per node so that lower-priority pods do not
take the room their victims free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.components.api import quantity

from . import podinfo

TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_key(pod: dict) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def has_affinity(pod: dict) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    return bool(aff.get("podAffinity") or aff.get("podAntiAffinity"))


def has_required_anti_affinity(pod: dict) -> bool:
    anti = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))


@dataclass
class PodEntry:
    pod: dict
    requests: dict[str, int]
    non_zero: dict[str, int]
    ports: list[tuple[str, str, int]]


def _allocatable(node: dict) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    out = {}
    for r, v in alloc.items():
        try:
            out[r] = quantity.milli(v) if r == "cpu" else quantity.whole(v)
        except ValueError:
            continue  # a malformed entry must not make the node unusable for everything else
    return out


@dataclass
class NodeInfo:
    node: dict
    pods: dict[str, PodEntry] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    non_zero: dict[str, int] = field(default_factory=lambda: {"cpu": 0, "memory": 0})
    ports: list[tuple[str, str, int]] = field(default_factory=list)
    affinity_pods: int = 0  # pods here with any pod (anti-)affinity
    anti_affinity_pods: int = 0  # pods here with required anti-affinity

    def __post_init__(self) -> None:
        self.set_node(self.node)

    def set_node(self, node: dict) -> None:
        self.version = getattr(self, "version", 0) + 1  # any change to the node or its pods
        self.node = node
        self.name = node["metadata"]["name"]
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        self.allocatable = _allocatable(node)
        self.taints = (node.get("spec") or {}).get("taints") or []
        self.images: dict[str, int] = {}
        for img in (node.get("status") or {}).get("images") or []:
            for name in img.get("names") or []:
                self.images[normalize_image(name)] = int(img.get("sizeBytes") or 0)

    def add_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        if key in self.pods:
            self.remove_pod(key)
        entry = PodEntry(pod, podinfo.pod_requests(pod), podinfo.pod_requests(pod, non_zero=True),
                         podinfo.host_ports(pod))
        self.pods[key] = entry
        self.version += 1
        podinfo.add_amounts(self.requested, entry.requests)
        for r in ("cpu", "memory"):
            self.non_zero[r] += entry.non_zero.get(r, 0)
        self.ports.extend(entry.ports)
        self.affinity_pods += has_affinity(pod)
        self.anti_affinity_pods += has_required_anti_affinity(pod)

    def remove_pod(self, key: str) -> dict | None:
        entry = self.pods.pop(key, None)
        if entry is None:
            return None
        self.version += 1
        for r, v in entry.requests.items():
            self.requested[r] = self.requested.get(r, 0) - v
        for r in ("cpu", "memory"):
            self.non_zero[r] -= entry.non_zero.get(r, 0)
        for p in entry.ports:
            self.ports.remove(p)
        self.affinity_pods -= has_affinity(entry.pod)
        self.anti_affinity_pods -= has_required_anti_affinity(entry.pod)
        return entry.pod

    def clone(self) -> "NodeInfo":
        """A copy whose pods can be added and removed (preemption's what-if)."""
        copy = NodeInfo(self.node)
        for entry in self.pods.values():
            copy.add_pod(entry.pod)
        return copy


def normalize_image(name: str) -> str:
    """`nginx` and `docker.io/library/nginx:latest` are one image for locality."""
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    return name


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.node_order: list[str] = []  # stable order for the filter's round robin
        self.pod_node: dict[str, str] = {}
        self.assumed: set[str] = set()
        self.nominated: dict[str, dict[str, dict]] = {}  # node -> pod key -> pod
        self.image_nodes: dict[str, int] = {}  # image -> how many nodes have it
        self.affinity_pods = 0
        self.anti_affinity_pods = 0
        self.generation = 0  # bumps on every change (preemption and tests use it)
        self._ordered: list[NodeInfo] | None = None

    # -- nodes ----------------------------------------------------------------------------------
    def _count_images(self, ni: NodeInfo, sign: int) -> None:
        for image in ni.images:
            self.image_nodes[image] = self.image_nodes.get(image, 0) + sign

    def add_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(node)
            self.node_order.append(name)
            self._ordered = None
        else:
            self._count_images(ni, -1)
            ni.set_node(node)
        self._count_images(ni, +1)
        self.generation += 1

    def remove_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.pop(name, None)
        if ni is not None:
            self._count_images(ni, -1)
            self.node_order.remove(name)
            self._ordered = None
            for key in list(ni.pods):
                self.pod_node.pop(key, None)
                self.assumed.discard(key)
            self.affinity_pods -= ni.affinity_pods
            self.anti_affinity_pods -= ni.anti_affinity_pods
        self.generation += 1

    # -- pods -----------------------------------------------------------------------------------
    def _place(self, pod: dict, node: str) -> None:
        key = pod_key(pod)
        self._unplace(key)
        ni = self.nodes.get(node)
        if ni is None:  # bound to a node we do not know (yet): remember nothing
            return
        ni.add_pod(pod)
        self.pod_node[key] = node
        self.affinity_pods += has_affinity(pod)
        self.anti_affinity_pods += has_required_anti_affinity(pod)
        self.generation += 1

    def _unplace(self, key: str) -> None:
        node = self.pod_node.pop(key, None)
        if node is not None and node in self.nodes:
            pod = self.nodes[node].remove_pod(key)
            if pod is not None:
                self.affinity_pods -= has_affinity(pod)
                self.anti_affinity_pods -= has_required_anti_affinity(pod)
            self.generation += 1

    def set_pod(self, pod: dict) -> None:
        """An informer add/update: a bound, non-terminal pod occupies its node; anything else does not."""
        key = pod_key(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            self.assumed.discard(key)
            self._place(pod, node)
        elif key not in self.assumed:
            self._unplace(key)

    def remove_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        self.assumed.discard(key)
        self._unplace(key)
        self.remove_nominated(pod)

    def assume(self, pod: dict, node: str) -> None:
        self._place(pod, node)
        self.assumed.add(pod_key(pod))

    def forget(self, pod: dict) -> None:
        key = pod_key(pod)
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    # -- nominations (preemption) ---------------------------------------------------------------
    def nominate(self, pod: dict, node: str) -> None:
        self.remove_nominated(pod)
        self.nominated.setdefault(node, {})[pod_key(pod)] = pod

    def remove_nominated(self, pod: dict) -> None:
        key = pod_key(pod)
        for pods in self.nominated.values():
            pods.pop(key, None)

    def nominated_on(self, node: str) -> list[dict]:
        return list(self.nominated.get(node, {}).values())

    def ordered(self) -> list[NodeInfo]:
        if self._ordered is None:  # rebuilt only after nodes come or go
            self._ordered = [self.nodes[n] for n in self.node_order]
        return self._ordered
