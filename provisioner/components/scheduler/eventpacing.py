"""Bindings first: the scheduler's Scheduled events wait while bindings are being written.

Each bound pod costs the API server a binding and a `Scheduled` Event, the event about a third of
the pair. kube-scheduler writes its events through a client of their own with its own rate limit
(clientConnection qps/burst, 50/100 by default), so a burst of bindings is not slowed by its events;
this pacer does the same: while any binding is in flight, events go out at most QPS per second
(BURST at once); when no binding is, as fast as the API server takes them. Events wait in a
backlog of up to BACKLOG (the oldest dropped first, with one log line, as client-go drops when its
queue is full) and are handed to the EventRecorder only a few at a time, so its own queue never
overflows. Nothing here blocks the scheduling loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

QPS, BURST = 50.0, 100  # kube-scheduler's default clientConnection for its event client
BACKLOG = 10_000
HANDOFF = 16  # events queued in the recorder at most: the pacer keeps the rest


def slim(obj: dict) -> dict:
    """What an Event's involvedObject needs of an object: a waiting event must not hold a whole pod."""
    meta = obj.get("metadata") or {}
    return {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta}}


class EventPacer:
    def __init__(self, busy: Callable[[], bool], qps: float = QPS, burst: int = BURST) -> None:
        self.busy = busy  # True while bindings are in flight
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.backlog: collections.deque = collections.deque()
        self.dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def record(self, recorder: Any, obj: dict, etype: str, reason: str, message: str) -> None:
        if len(self.backlog) >= BACKLOG:
            self.backlog.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event backlog full: %d events dropped so far", self.dropped)
        self.backlog.append((recorder, slim(obj), etype, reason, message))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump(), name="event pacer")

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.qps)
        self.stamp = now

    async def _pump(self) -> None:
        while True:
            if not self.backlog:
                self._wake.clear()
                await self._wake.wait()
                continue
            recorder = self.backlog[0][0]
            if recorder.queue.qsize() >= HANDOFF:
                await asyncio.sleep(0.01)  # the recorder is writing what it has
                continue
            self._refill()
            if self.busy():
                if self.tokens < 1:
                    # wake early too: once the bindings end, the rest may go at once
                    await asyncio.sleep(min((1 - self.tokens) / self.qps, 0.05))
                    continue
                self.tokens -= 1
            _, obj, etype, reason, message = self.backlog.popleft()
            recorder.record_event(obj, etype, reason, message)
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """Hand every waiting event to its recorder (tests, shutdown)."""
        while self.backlog:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
