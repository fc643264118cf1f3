"""What every controller shares: a work queue of object keys, workers, and the context they read.

A controller registers handlers on shared informers that only enqueue keys; workers take a key
and call `sync(key)`, which reads the informers' caches, decides (pure functions in each module)
and writes through the API. The queue never hands one key to two workers at once and folds
repeated adds into one, so an object is reconciled by one worker at a time; a failed sync is
retried with backoff (5 ms doubling to 1000 s, as client-go's default rate limiter).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.informer import Informer, InformerFactory, key_of

from .flags import Options
from .metrics import ADDS, DEPTH, QUEUE_SECONDS, RETRIES, WORK_SECONDS

log = logging.getLogger(__name__)

BASE_DELAY = 0.005
MAX_DELAY = 1000.0


class WorkQueue:
    """Deduplicating FIFO of keys with delayed adds and per-key failure backoff."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._queued_at: dict[str, float] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._dirty: set[str] = set()  # queued, not yet taken
        self._processing: set[str] = set()
        self._again: set[str] = set()  # added while processing: queue once done
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._dirty)

    def add(self, key: str) -> None:
        if key in self._processing:
            self._again.add(key)
        elif key not in self._dirty:
            self._dirty.add(key)
            self._queued_at[key] = time.monotonic()
            self._queue.put_nowait(key)
            ADDS.labels(self.name).inc()
            DEPTH.labels(self.name).set(len(self._dirty))

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and timer.when() <= when:
            return  # an earlier wake-up is already set
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        RETRIES.labels(self.name).inc()
        self.add_after(key, min(BASE_DELAY * 2 ** n, MAX_DELAY))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        DEPTH.labels(self.name).set(len(self._dirty))
        QUEUE_SECONDS.labels(self.name).observe(time.monotonic() - self._queued_at.pop(key, time.monotonic()))
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


@dataclass
class Context:
    """What a controller gets: the API client, the shared informers, the options, and events."""

    client: Client
    informers: InformerFactory
    options: Options
    recorder: Any = None  # api.events.EventRecorder
    clients: Callable[[str], Client] | None = None  # per-controller identities

    def informer(self, group: str, version: str, plural: str) -> Informer:
        return self.informers.informer(group, version, plural)

    def client_for(self, controller: str) -> Client:
        """The client a controller writes with (its own service account with
        --use-service-account-credentials, else the manager's identity)."""
        return self.clients(controller) if self.clients else self.client

    def event(self, obj: dict, etype: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.record_event(obj, etype, reason, message)


class Controller(abc.ABC):
    """A named reconcile loop over keys; subclasses set `name` and implement setup() and sync()."""

    name = "controller"
    requires: tuple[tuple[str, str, str], ...] = ()  # (group, version, plural) that must be served

    def __init__(self, ctx: Context, workers: int = 1) -> None:
        self.ctx = ctx
        self.workers = workers
        self.queue = WorkQueue(self.name)
        self.api = self.ctx.client_for(self.name)
        self.setup()

    # -- subclass API ----------------------------------------------------------------------
    def setup(self) -> None:
        """Take informers from self.ctx and register handlers that enqueue keys."""

    @abc.abstractmethod
    async def sync(self, key: str) -> None:
        """Bring the object named `key` to its desired state (a missing object: clean up)."""

    # -- helpers -----------------------------------------------------------------------------
    def enqueue(self, obj: dict) -> None:
        self.queue.add(key_of(obj))

    def enqueue_all(self, informer: Informer) -> Callable[..., None]:
        """Handlers (add, update, delete) that enqueue the object itself."""
        return informer.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(max(1, self.workers))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.monotonic()
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except ApiStatusError as exc:
                level = logging.DEBUG if exc.code == 409 else logging.WARNING
                log.log(level, "%s: sync %s: %s", self.name, key, exc)
                self.queue.retry(key)
            except Exception:
                log.exception("%s: sync %s failed", self.name, key)
                self.queue.retry(key)
            finally:
                WORK_SECONDS.labels(self.name).observe(time.monotonic() - started)
                self.queue.done(key)


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


async def ignore_not_found(coro: Any) -> Any:
    try:
        return await coro
    except ApiStatusError as exc:
        if exc.code != 404:
            raise
        return None
