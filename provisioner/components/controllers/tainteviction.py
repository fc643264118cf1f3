"""The taint eviction controller: pods leave nodes with NoExecute taints they do not tolerate.

A pod that tolerates none of a node's NoExecute taints is deleted at once; one whose tolerations
carry tolerationSeconds is deleted when the shortest of them has passed since the taint's
timeAdded; one tolerating them all without a limit stays. Deletion is the pod's normal graceful
delete (its kubelet finishes it).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller
from .daemonset import tolerates

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def eviction_delay(pod: Obj, taints: list[Obj], now: dt.datetime) -> float | None:
    """Seconds until the pod must go (0: now), or None when it may stay."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    delays: list[float] = []
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates([t], taint)]
        if not matching:
            return 0.0
        limits = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
        if len(limits) == len(matching):  # every matching toleration is time-limited
            added = podutil.parse_time(taint.get("timeAdded")) or now
            delays.append((added + dt.timedelta(seconds=max(0, min(limits))) - now).total_seconds())
    return max(0.0, min(delays)) if delays else None


class TaintEvictionController(Controller):
    name = "taint-eviction-controller"

    def setup(self) -> None:
        self.nodes = self.ctx.informer("", "v1", "nodes")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.pods.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))
        self.nodes.add_handler(self._node, lambda _o, n: self._node(n))

    def _node(self, node: Obj) -> None:
        if any(t.get("effect") == "NoExecute" for t in (node.get("spec") or {}).get("taints") or []):
            name = node["metadata"]["name"]
            for pod in self.pods.list():
                if (pod.get("spec") or {}).get("nodeName") == name:
                    self.enqueue(pod)

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or podutil.is_terminating(pod) or not (pod.get("spec") or {}).get("nodeName"):
            return
        node = self.nodes.get(pod["spec"]["nodeName"])
        if node is None:
            return
        delay = eviction_delay(pod, (node.get("spec") or {}).get("taints") or [], podutil.utcnow())
        log.debug("pod %s on %s: eviction in %s s", key, node["metadata"]["name"], delay)
        if delay is None:
            return
        if delay > 0:
            self.queue.add_after(key, delay)
            return
        self.ctx.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            await self.api.delete("", "v1", "pods", pod["metadata"]["name"], pod["metadata"]["namespace"],
                                  uid=pod["metadata"]["uid"])
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
