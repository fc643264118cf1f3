"""core/v1 Events written as client-go's event recorder writes them, shared by every component.

`EventRecorder.record_event(obj, "Warning", "FailedScheduling", message)` never blocks the caller:
events go through a bounded queue to one writer task (dropped, with a log line, when the queue is
full, as client-go drops them). A repeat of the same event (same source, object, type, reason and
message) is not a new object: the existing Event's count and lastTimestamp are patched, which is what
`kubectl describe` shows as "(x3 over 2m)". Names are `<object name>.<hex nanoseconds>`; events about
cluster-scoped objects go to the `default` namespace.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict

from .client import ApiStatusError, Client
from .objects import now

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
CACHE_SIZE = 4096  # client-go's LRU of recent events for aggregation
DROP_LOG_INTERVAL = 10.0


def object_reference(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": meta.get("name", ""),
           "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.seen: OrderedDict[tuple, dict] = OrderedDict()  # aggregation key -> {name, namespace, count}
        self._task: asyncio.Task | None = None
        self.dropped = 0
        self._last_drop_log = -DROP_LOG_INTERVAL

    def record_event(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """Queue an event about `obj` (type Normal or Warning); returns at once."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._writer(), name="event writer")
        try:
            self.queue.put_nowait((object_reference(obj), event_type, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            now_s = time.monotonic()
            if now_s - self._last_drop_log >= DROP_LOG_INTERVAL:  # one line per interval, not one per event
                log.warning("event queue full (API server slower than events): %d dropped so far, latest %s %s",
                            self.dropped, event_type, reason)
                self._last_drop_log = now_s

    async def flush(self) -> None:
        """Wait until every queued event has been written (for tests and clean shutdown)."""
        await self.queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _writer(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # events are best effort: never take the component down
                log.warning("event %s %s not written: %s", item[1], item[2], exc)
            finally:
                self.queue.task_done()

    async def _write(self, ref: dict, event_type: str, reason: str, message: str) -> None:
        key = (ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"), ref.get("apiVersion"),
               event_type, reason, message)
        stamp = now()
        prior = self.seen.get(key)
        if prior is not None:
            prior["count"] += 1
            try:
                await self.client.patch("", "v1", "events", prior["name"],
                                        {"count": prior["count"], "lastTimestamp": stamp}, prior["namespace"],
                                        patch_type="application/strategic-merge-patch+json")
                self.seen.move_to_end(key)
                return
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                del self.seen[key]  # the event expired or was deleted: start a new one
        namespace = ref.get("namespace") or "default"
        name = f"{ref.get('name', '')}.{time.time_ns():x}"
        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
                 "involvedObject": ref, "reason": reason, "message": message, "type": event_type,
                 "source": {"component": self.component, "host": self.host},
                 "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                 "reportingComponent": self.component, "reportingInstance": self.host}
        await self.client.create("", "v1", "events", event, namespace)
        self.seen[key] = {"name": name, "namespace": namespace, "count": 1}
        while len(self.seen) > CACHE_SIZE:
            self.seen.popitem(last=False)
