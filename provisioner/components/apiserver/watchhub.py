"""Fan-out of one etcd watch per resource to many API watchers.

A hundred `kubectl get -w` or informers on pods would otherwise be a hundred etcd watches, each
change decoded and serialized a hundred times. A hub holds one etcd watch per resource (all
namespaces) and hands the decoded events to its subscribers.

Exactness is kept by only sharing what needs no history: a watcher whose start revision is
beyond everything the hub has already passed on (and not before the hub's own start) joins it;
any other watcher (an older resourceVersion, possibly compacted: 410 Gone) gets its own etcd
watch through Storage.watch, exactly as before. Nothing here is state another API server must
see: the hub is a cache of etcd's own event stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator

from . import metrics
from .errors import ApiError
from .storage import Storage, WatchEvent

QUEUE_LIMIT = 10000  # a watcher this far behind is ended; its client re-lists, as with kube-apiserver


@dataclass(eq=False)
class _Subscriber:
    start: int
    prefix: bytes
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


class _Hub:
    def __init__(self, storage: Storage, resource: str, start: int):
        self.start = start
        self.delivered = start - 1  # highest revision passed on to subscribers
        self.subscribers: set[_Subscriber] = set()
        self.task = asyncio.get_running_loop().create_task(self._run(storage, resource))

    async def _run(self, storage: Storage, resource: str) -> None:
        try:
            async for ev in storage.watch(resource, None, self.start):
                self.delivered = ev.revision
                for sub in list(self.subscribers):
                    if ev.revision < sub.start or not ev.key.startswith(sub.prefix):
                        continue
                    if sub.queue.qsize() >= QUEUE_LIMIT:
                        self.subscribers.discard(sub)
                        sub.queue.put_nowait(ApiError(410, "Expired", "watch fell too far behind; list again"))
                        continue
                    sub.queue.put_nowait(ev)
        except ApiError as exc:
            self._fail(exc)
        except Exception as exc:  # etcd gone: end every shared watch, clients re-list
            self._fail(ApiError(500, "InternalError", f"watch ended: {exc}"))

    def _fail(self, exc: ApiError) -> None:
        for sub in self.subscribers:
            sub.queue.put_nowait(exc)
        self.subscribers.clear()


class WatchHubs:
    def __init__(self, storage: Storage):
        self.storage = storage
        self.hubs: dict[str, _Hub] = {}

    async def watch(self, resource: str, namespace: str | None, start: int) -> AsyncIterator[WatchEvent]:
        """Events of the collection from revision `start` on (inclusive), like Storage.watch."""
        hub = self.hubs.get(resource)
        if hub is None or hub.task.done():
            current = await self.storage.current_revision()
            hub = self.hubs.get(resource)  # another watcher may have made one meanwhile
            if (hub is None or hub.task.done()) and start > current:
                hub = self.hubs[resource] = _Hub(self.storage, resource, current + 1)
        if hub is None or hub.task.done() or start < hub.start or start <= hub.delivered:
            async for ev in self.storage.watch(resource, namespace, start):
                metrics.watch_event(resource)
                yield ev
            return
        sub = _Subscriber(start, self.storage.collection(resource, namespace))
        hub.subscribers.add(sub)
        try:
            while True:
                item = await sub.queue.get()
                if isinstance(item, ApiError):
                    raise item
                metrics.watch_event(resource)
                yield item
        finally:
            hub.subscribers.discard(sub)
            if not hub.subscribers and self.hubs.get(resource) is hub:
                hub.task.cancel()
                del self.hubs[resource]
