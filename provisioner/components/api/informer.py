"""Shared informers: a local, indexed cache of one resource kept current by list-then-watch.

Every component (scheduler, controller manager, kube-proxy, DNS) reads the cluster through these
instead of polling. As in client-go, an informer lists, then watches from the list's
resourceVersion; a watch that ends normally is resumed from the last seen resourceVersion, and a
410 Gone (or any error) makes it list again, with backoff, emitting the difference between the old
and new store as add/update/delete events so handlers never miss a change.

`InformerFactory` hands out one informer per (resource, namespace, selectors) in a process, so
several controllers sharing pods cost one watch.

Handlers are plain callables (or coroutines) `on_add(obj)`, `on_update(old, new)`,
`on_delete(obj)`; they run in the informer's task, so they should be quick (enqueue a key).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .client import ApiStatusError, Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]

INITIAL_BACKOFF = 0.8  # client-go's reflector backoff: 800 ms doubling to 30 s
MAX_BACKOFF = 30.0
WATCH_TIMEOUT = (300, 600)  # seconds, chosen at random per watch as client-go does


def key_of(obj: Obj) -> str:
    """The store key: `namespace/name`, or `name` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def namespace_index(obj: Obj) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


class Store:
    """Objects by key, with named secondary indexes (index name -> value -> keys)."""

    def __init__(self) -> None:
        self.items: dict[str, Obj] = {}
        self.indexers: dict[str, IndexFunc] = {"namespace": namespace_index}
        self.indexes: dict[str, dict[str, set[str]]] = {"namespace": {}}

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        if name in self.indexers:
            return
        self.indexers[name] = fn
        self.indexes[name] = {}
        for key, obj in self.items.items():
            self._index(name, key, obj)

    def _index(self, name: str, key: str, obj: Obj) -> None:
        for value in self.indexers[name](obj):
            self.indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self.indexers.items():
            for value in fn(obj):
                keys = self.indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.indexes[name][value]

    def put(self, obj: Obj) -> Obj | None:
        key = key_of(obj)
        old = self.items.get(key)
        if old is not None:
            self._unindex(key, old)
        self.items[key] = obj
        for name in self.indexers:
            self._index(name, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self.items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def get(self, key: str) -> Obj | None:
        return self.items.get(key)

    def list(self) -> list[Obj]:
        return list(self.items.values())

    def by_index(self, name: str, value: str) -> list[Obj]:
        return [self.items[k] for k in self.indexes[name].get(value, ())]


@dataclass
class Handler:
    on_add: Callable[[Obj], Any] | None = None
    on_update: Callable[[Obj, Obj], Any] | None = None
    on_delete: Callable[[Obj], Any] | None = None


async def _call(fn: Callable | None, *args: Any) -> None:
    if fn is None:
        return
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:  # one broken handler must not stop the cache or the other handlers
        log.exception("informer handler %r failed", fn)


class Informer:
    """List-then-watch cache of one resource; run() until cancelled."""

    def __init__(self, client: Client, group: str, version: str, plural: str, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "") -> None:
        self.client = client
        self.resource = (group, version, plural)
        self.namespace = namespace
        self.params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        self.store = Store()
        self.handlers: list[Handler] = []
        self.resource_version = ""
        self.kind = self.api_version = ""
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.relists = 0  # how many times the informer had to list (1 on a quiet run); for tests and metrics

    # -- reading -------------------------------------------------------------------------------
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def list(self) -> list[Obj]:
        return self.store.list()

    def by_index(self, name: str, value: str) -> list[Obj]:
        return self.store.by_index(name, value)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.store.add_indexer(name, fn)

    # -- handlers ------------------------------------------------------------------------------
    def add_handler(self, on_add: Callable[[Obj], Any] | None = None,
                    on_update: Callable[[Obj, Obj], Any] | None = None,
                    on_delete: Callable[[Obj], Any] | None = None) -> Handler:
        """Register handlers; a late handler first sees every cached object as an add (client-go does too)."""
        handler = Handler(on_add, on_update, on_delete)
        self.handlers.append(handler)
        if self.has_synced() and on_add is not None:
            for obj in self.store.list():
                result = on_add(obj)
                if inspect.isawaitable(result):
                    asyncio.ensure_future(result)
        return handler

    async def _dispatch(self, kind: str, *args: Obj) -> None:
        for h in list(self.handlers):
            await _call({"add": h.on_add, "update": h.on_update, "delete": h.on_delete}[kind], *args)

    # -- running -------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"informer {self.resource[2]}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def run(self) -> None:
        """List (unless resuming a stopped informer), then watch; re-list after 410 Gone or errors."""
        backoff = INITIAL_BACKOFF
        need_list = not self.has_synced()
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list, backoff = False, INITIAL_BACKOFF
                await self._watch()  # ended normally (timeoutSeconds): watch again from the last version
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                need_list = True
                if isinstance(exc, ApiStatusError) and exc.code == 410:
                    log.info("%s: resourceVersion %s too old; listing again", self.resource[2],
                             self.resource_version)
                    continue
                # API server away, connection reset, 5xx: list again after a pause
                log.warning("%s: list/watch failed (%s); retrying in %.1fs", self.resource[2],
                            exc or type(exc).__name__, backoff)
                await asyncio.sleep(backoff * random.uniform(1.0, 1.2))
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _list(self) -> None:
        group, version, plural = self.resource
        result = await self.client.list(group, version, plural, self.namespace, **self.params)
        self.relists += 1
        self.resource_version = result.get("metadata", {}).get("resourceVersion", "")
        fresh = {key_of(o): o for o in result.get("items") or []}
        kind = self.kind = result.get("kind", "").removesuffix("List")
        api_version = self.api_version = result.get("apiVersion", "")
        for key in [k for k in self.store.items if k not in fresh]:
            old = self.store.remove(key)
            await self._dispatch("delete", old)
        for key, obj in fresh.items():
            obj.setdefault("kind", kind)  # list items carry no kind; handlers like to know it
            obj.setdefault("apiVersion", api_version)
            old = self.store.put(obj)
            if old is None:
                await self._dispatch("add", obj)
            elif old.get("metadata", {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                await self._dispatch("update", old, obj)
        self._synced.set()

    async def _watch(self) -> None:
        """One watch from the last seen resourceVersion; raises on errors (the caller re-lists)."""
        group, version, plural = self.resource
        timeout = str(random.randint(*WATCH_TIMEOUT))
        async for etype, obj in self.client.watch(group, version, plural, self.namespace,
                                                  resource_version=self.resource_version,
                                                  timeoutSeconds=timeout, **self.params):
            if etype == "ERROR":
                raise ApiStatusError(obj)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if etype == "BOOKMARK":
                continue
            obj.setdefault("kind", self.kind)
            obj.setdefault("apiVersion", self.api_version)
            if etype == "DELETED":
                self.store.remove(key_of(obj))
                await self._dispatch("delete", obj)
            else:
                old = self.store.put(obj)
                if old is None:
                    await self._dispatch("add", obj)
                else:
                    await self._dispatch("update", old, obj)


class InformerFactory:
    """One informer per resource (and namespace/selectors) in a process, shared by its handlers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.informers: dict[tuple, Informer] = {}

    def informer(self, group: str, version: str, plural: str, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "") -> Informer:
        key = (group, version, plural, namespace, label_selector, field_selector)
        if key not in self.informers:
            self.informers[key] = Informer(self.client, group, version, plural, namespace,
                                           label_selector, field_selector)
        return self.informers[key]

    def start(self) -> None:
        """Start every informer asked for so far (starting twice is harmless)."""
        for inf in self.informers.values():
            inf.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        waits = [inf.wait_synced() for inf in self.informers.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def has_synced(self) -> bool:
        return all(inf.has_synced() for inf in self.informers.values())

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self.informers.values()))

