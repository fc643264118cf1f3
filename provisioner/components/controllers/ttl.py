"""The ttl controller: nodes carry `node.alpha.kubernetes.io/ttl`, how long a kubelet may cache
Secrets and ConfigMaps, scaled with the cluster's size as upstream (0 s up to 100 nodes, then 15,
30, 60 and 300 s), with the same overlapping boundaries so a cluster at an edge does not flap."""

from __future__ import annotations

from typing import Any

from provisioner.components.api.client import ApiStatusError

from .base import Controller

ANNOTATION = "node.alpha.kubernetes.io/ttl"
# (grow past this many nodes, shrink below this many, ttl seconds)
BOUNDARIES = [(0, 100, 0), (90, 500, 15), (450, 1000, 30), (900, 2000, 60), (1800, 1 << 31, 300)]


def step(current: int, nodes: int) -> int:
    """The boundary index for this many nodes, moving from `current` only past its edges."""
    while current + 1 < len(BOUNDARIES) and nodes > BOUNDARIES[current][1]:
        current += 1
    while current > 0 and nodes < BOUNDARIES[current][0]:
        current -= 1
    return current


class TTLController(Controller):
    name = "ttl"

    def setup(self) -> None:
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.level = 0
        self.nodes.add_handler(self._changed, lambda _o, n: self.enqueue(n), self._changed)

    def _changed(self, _node: Any) -> None:
        level = step(self.level, len(self.nodes.list()))
        if level != self.level:
            self.level = level
            for n in self.nodes.list():
                self.enqueue(n)
        elif _node is not None:
            self.enqueue(_node)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        want = str(BOUNDARIES[step(self.level, len(self.nodes.list()))][2])
        if (node["metadata"].get("annotations") or {}).get(ANNOTATION) == want:
            return
        try:
            await self.api.patch("", "v1", "nodes", key, {"metadata": {"annotations": {ANNOTATION: want}}})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
