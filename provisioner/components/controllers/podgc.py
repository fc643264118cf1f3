"""The pod garbage collector: pods nobody else will clean up.

- pods bound to a node that no longer exists (orphaned): deleted at once (grace 0), the node
  first confirmed absent through the API, not only the cache;
- terminating pods that were never scheduled: no kubelet will finish them, so they are force
  deleted;
- finished pods (Succeeded/Failed) beyond --terminated-pod-gc-threshold (12500): oldest first.
"""

from __future__ import annotations

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

TERMINATED_THRESHOLD = 12500
THRESHOLD_KEY = "\0terminated"  # a queue key that is not a pod: the threshold sweep
SWEEP_PERIOD = 20.0  # upstream gcCheckPeriod


def decide(pod: dict, node_exists: bool) -> str | None:
    """Why this pod should be force deleted now, or None."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node and not node_exists:
        return "orphaned"
    if not node and podutil.is_terminating(pod):
        return "unscheduled-terminating"
    return None


def over_threshold(pods: list[dict], threshold: int) -> list[dict]:
    done = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    excess = len(done) - threshold
    if threshold <= 0 or excess <= 0:
        return []
    return sorted(done, key=lambda p: p["metadata"].get("creationTimestamp") or "")[:excess]


class PodGCController(Controller):
    name = "podgc"
    threshold = TERMINATED_THRESHOLD

    def setup(self) -> None:
        self.pods = self.ctx.informer("", "v1", "pods")
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.pods.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))
        self.nodes.add_handler(on_delete=self._node_gone)

    def _node_gone(self, node: dict) -> None:
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") == node["metadata"]["name"]:
                self.enqueue(pod)

    async def run(self) -> None:
        self.queue.add_after(THRESHOLD_KEY, SWEEP_PERIOD)
        await super().run()

    async def sync(self, key: str) -> None:
        if key == THRESHOLD_KEY:
            self.queue.add_after(THRESHOLD_KEY, SWEEP_PERIOD)
            for pod in over_threshold(self.pods.list(), self.threshold):
                await self._force_delete(pod)
            return
        pod = self.pods.get(key)
        if pod is None:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        exists = True
        if node and self.nodes.get(node) is None:
            try:
                await self.api.get("", "v1", "nodes", node)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                exists = False
        if decide(pod, exists):
            await self._force_delete(pod)

    async def _force_delete(self, pod: dict) -> None:
        ns, name = split_key(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
        try:
            await self.api.delete("", "v1", "pods", name, ns, grace_period_seconds=0, uid=pod["metadata"]["uid"])
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
