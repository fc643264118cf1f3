"""The scheduling queue: active (highest priority first, then oldest), backoff, and unschedulable.

As kube-scheduler's: a pod that failed waits `initial * 2^(attempts-1)` seconds (1 s doubling to
10 s by default) in backoff before it is tried again. Pods that found no node park in the
unschedulable set until the cluster changes in a way that could help (a node added or changed, a
pod deleted, a taint removed: the scheduler calls `move_all`), and at the latest after five
minutes. A change that happens while a pod is being tried sends that pod to backoff rather than
parking it, so the change is not missed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field

from .cache import pod_key
from .podinfo import priority

UNSCHEDULABLE_TIMEOUT = 300.0


@dataclass
class QueuedPod:
    pod: dict
    attempts: int = 0
    added: float = field(default_factory=time.monotonic)  # first time queued, for ordering
    backoff_until: float = 0.0
    cycle: int = 0  # the scheduling cycle of the last attempt


class SchedulingQueue:
    def __init__(self, initial_backoff: float = 1.0, max_backoff: float = 10.0) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.pods: dict[str, QueuedPod] = {}  # every pod the queue knows, wherever it is
        self.where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable" | "in-flight"
        self._active: list[tuple] = []
        self._backoff: list[tuple] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.cycle = 0
        self.move_cycle = -1  # the scheduling cycle during which move_all last ran

    def __len__(self) -> int:
        return len(self.pods)

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "in-flight": 0}
        for w in self.where.values():
            out[w] += 1
        return out

    # -- entry points -----------------------------------------------------------------------------
    def add(self, pod: dict) -> None:
        """A new pending pod (or one the scheduler must look at again now)."""
        key = pod_key(pod)
        qp = self.pods.get(key)
        if qp is None:
            qp = self.pods[key] = QueuedPod(pod)
        else:
            qp.pod = pod
        if self.where.get(key) != "in-flight":
            self._to_active(key)

    def update(self, pod: dict) -> None:
        """The pod changed (labels, tolerations...): an unschedulable pod deserves a new try."""
        key = pod_key(pod)
        qp = self.pods.get(key)
        if qp is None:
            self.add(pod)
            return
        qp.pod = pod
        if self.where.get(key) == "unschedulable":
            self._to_active_or_backoff(key)

    def delete(self, pod: dict) -> None:
        key = pod_key(pod)
        self.pods.pop(key, None)
        self.where.pop(key, None)  # heap entries for it become stale and are skipped

    def done(self, pod: dict) -> None:
        """Scheduled (or no longer ours): forget it."""
        self.delete(pod)

    def requeue_unschedulable(self, pod: dict) -> None:
        """The attempt found no node: park it, or back off if the cluster changed meanwhile."""
        key = pod_key(pod)
        qp = self.pods.get(key)
        if qp is None:
            return
        qp.pod = pod
        qp.backoff_until = time.monotonic() + self.backoff_for(qp.attempts)
        if self.move_cycle >= qp.cycle:
            self._to_backoff(key)
        else:
            self.where[key] = "unschedulable"

    def requeue_error(self, pod: dict) -> None:
        """An error (binding failed, API away): try again after the backoff."""
        key = pod_key(pod)
        qp = self.pods.get(key)
        if qp is None:
            return
        qp.backoff_until = time.monotonic() + self.backoff_for(qp.attempts)
        self._to_backoff(key)

    def move_all(self, only=None) -> None:
        """The cluster changed: every parked pod (or those `only(pod)` picks) goes back in line."""
        self.move_cycle = self.cycle
        for key, where in list(self.where.items()):
            if where == "unschedulable" and (only is None or only(self.pods[key].pod)):
                self._to_active_or_backoff(key)

    def backoff_for(self, attempts: int) -> float:
        return min(self.initial_backoff * (2 ** max(0, attempts - 1)), self.max_backoff)

    # -- moving between queues ---------------------------------------------------------------------
    def _to_active(self, key: str) -> None:
        qp = self.pods[key]
        self.where[key] = "active"
        heapq.heappush(self._active, (-priority(qp.pod), qp.added, next(self._seq), key))
        self._wake.set()

    def _to_backoff(self, key: str) -> None:
        qp = self.pods[key]
        self.where[key] = "backoff"
        heapq.heappush(self._backoff, (qp.backoff_until, next(self._seq), key))
        self._wake.set()

    def _to_active_or_backoff(self, key: str) -> None:
        if self.pods[key].backoff_until > time.monotonic():
            self._to_backoff(key)
        else:
            self._to_active(key)

    def _flush(self, now: float) -> float | None:
        """Move due pods from backoff (and long-parked ones) to active; seconds until the next is due."""
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self.where.get(key) == "backoff":
                self._to_active(key)
        for key, where in list(self.where.items()):
            if where == "unschedulable" and now - self.pods[key].backoff_until > UNSCHEDULABLE_TIMEOUT:
                self._to_active(key)
        return self._backoff[0][0] - now if self._backoff else None

    async def pop(self) -> dict:
        """The next pod to try, waiting as long as needed."""
        while True:
            wait = self._flush(time.monotonic())
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if self.where.get(key) == "active":
                    qp = self.pods[key]
                    qp.attempts += 1
                    self.cycle += 1
                    qp.cycle = self.cycle
                    self.where[key] = "in-flight"
                    return qp.pod
            self._wake.clear()
            timeout = min(wait, UNSCHEDULABLE_TIMEOUT) if wait is not None else 30.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
