"""The watch cache: lists (and gets at a given resourceVersion) served from memory, fed by etcd.

As kube-apiserver's cacher: per resource, one full read of its etcd prefix at revision R, then
one etcd watch from R+1 keeps the copy current. Each object is kept decoded (for selectors and
tables) and serialized once (a list response is its items' bytes joined, identical to what
rest.py would encode item by item).

resourceVersion semantics, as kube-apiserver with consistent reads from cache:
- "" (most recent): etcd's current revision is read (one small request), and the list waits until
  the cache has caught up with it (events, or a progress notification asked for on the watch
  stream), then is served from memory: as fresh as a read from etcd.
- "0" (any): served from memory at once.
- N with NotOlderThan (or no match): served once the cache has reached N; N beyond etcd's current
  revision is 504 "Too large resource version", as from etcd.
- resourceVersionMatch=Exact, continue tokens and subresources go to etcd (rest.py): history is
  etcd's. A first page from the cache hands out a continue token at the cache's revision, which
  etcd serves exactly.
Whenever the cache cannot answer in time (starting, etcd away, watch lost), the request falls
back to etcd, so the cache only ever makes reads faster.

Entered from server.py (`ApiServer.resources`) before the generic resource API.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from typing import Any, Callable

from aetcd import rpc, rtypes, utils
from aiohttp import web

from . import jsonwire, tables
from .apirequest import dumps
from .errors import ApiError
from .registry import Resource
from .rest import _int_param, encode_continue, parse_path, wants_table
from .selectors import predicate
from .storage import Storage

log = logging.getLogger("apiserver.cache")
FRESH_TIMEOUT = 3.0  # kube-apiserver waits as long for the cache before answering otherwise
PROGRESS_EVERY = 0.1  # a progress request unanswered this long is asked again
START_TIMEOUT = 10.0
RETRY_AFTER = 30.0  # a cache that stopped is rebuilt no sooner: meanwhile etcd answers


class Entry:
    """A cached object, and its JSON bytes once a list has needed them (not on the write path)."""

    __slots__ = ("obj", "_raw")

    def __init__(self, obj: dict):
        self.obj = obj  # shared, read-only
        self._raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw


class ResourceCache:
    """One resource's objects (all namespaces), current to `revision`."""

    def __init__(self, storage: Storage, resource: str):
        self.storage, self.resource = storage, resource
        self.prefix = storage.collection(resource, None)
        self.keys: list[bytes] = []  # sorted as etcd sorts: a range is a slice
        self.entries: dict[bytes, Entry] = {}
        self.revision = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Event()
        self._requests: asyncio.Queue = asyncio.Queue()
        self._progress_asked = 0.0  # when the outstanding progress request was sent; 0: none
        self.stopped_at = 0.0
        self.task = asyncio.get_running_loop().create_task(self._run())

    @property
    def healthy(self) -> bool:
        return self.ready.is_set() and not self.task.done()

    # feeding --------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._fill()
            self.ready.set()
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # etcd away, compaction, an undecodable value: reads go to etcd
            log.warning("watch cache of %s stopped (%s); reads go to etcd until it restarts", self.resource, exc)
        finally:
            self.stopped_at = asyncio.get_running_loop().time()
            self.ready.clear()
            self._advanced.set()  # wake waiters: they fall back

    async def _fill(self) -> None:
        await self.storage.client.connect()
        resp = await self.storage.client.kvstub.Range(rpc.RangeRequest(
            key=self.prefix, range_end=utils.prefix_range_end(self.prefix)))
        for kv in resp.kvs:
            obj = self.storage._decode(self.resource, kv.value, kv.mod_revision, kv.key)
            self.entries[kv.key] = Entry(obj)
        self.keys = sorted(self.entries)
        self._advance(resp.header.revision)

    async def _follow(self) -> None:
        """One raw etcd watch stream (aetcd's watcher cannot ask for progress)."""
        self._requests.put_nowait(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=self.prefix, range_end=utils.prefix_range_end(self.prefix), start_revision=self.revision + 1,
            prev_kv=True, progress_notify=True)))

        async def requests() -> Any:
            while True:
                yield await self._requests.get()

        async for resp in rpc.WatchStub(self.storage.client.channel).Watch(requests()):
            if resp.canceled or resp.compact_revision:
                raise RuntimeError(f"watch ended at revision {self.revision} ({resp.cancel_reason or 'compacted'})")
            if resp.created:
                continue
            for ev in resp.events:
                self._apply(rtypes.Event(ev.type, ev.kv, ev.prev_kv))
            # events: all of this prefix up to the last one; none: a progress notification, all up
            # to the header's revision
            self._advance(resp.events[-1].kv.mod_revision if resp.events else resp.header.revision)

    def _apply(self, ev: Any) -> None:
        key = ev.kv.key
        if ev.kind == "DELETE":
            if self.entries.pop(key, None) is not None:
                del self.keys[bisect.bisect_left(self.keys, key)]
            return
        shared = self.storage._event(self.resource, ev)  # decoded once with the watch hub
        obj = shared.obj if shared is not None else \
            self.storage._decode(self.resource, ev.kv.value, ev.kv.mod_revision, key)
        if key not in self.entries:
            bisect.insort(self.keys, key)
        self.entries[key] = Entry(obj)

    def _advance(self, revision: int) -> None:
        self._progress_asked = 0.0  # any answer on the stream carries the progress asked for
        if revision > self.revision:
            self.revision = revision
            self._advanced.set()
            self._advanced = asyncio.Event()

    # reading --------------------------------------------------------------------------------
    async def wait_fresh(self, revision: int, timeout: float = FRESH_TIMEOUT) -> bool:
        """True once the cache holds everything up to `revision`; False if it cannot in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.revision < revision:
            now = loop.time()
            if not self.healthy or now >= deadline:
                return False
            if now - self._progress_asked >= PROGRESS_EVERY:  # one request serves every waiter
                self._progress_asked = now
                self._requests.put_nowait(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
            try:
                await asyncio.wait_for(self._advanced.wait(), min(PROGRESS_EVERY, deadline - now))
            except asyncio.TimeoutError:
                pass
        return self.healthy

    def range(self, prefix: bytes) -> tuple[list[bytes], int]:
        """Keys under `prefix` (sorted) and the revision they are current to; no await: one state."""
        lo = bisect.bisect_left(self.keys, prefix)
        hi = bisect.bisect_left(self.keys, utils.prefix_range_end(prefix))
        return self.keys[lo:hi], self.revision


class WatchCache:
    def __init__(self, storage: Storage, authorize: Callable[..., Any], enabled: bool = True):
        self.storage = storage
        self.authorize = authorize
        self.enabled = enabled  # --watch-cache=false: every read goes to etcd
        self.caches: dict[str, ResourceCache] = {}
        if enabled:
            storage.informer = self  # Storage.cached_get/cached_list read through here

    # informer-style reads for the server's own lookups (admission) ----------------------------
    async def lookup(self, resource: str, namespace: str | None, name: str, fresh_to: int = 0) -> dict | None:
        """A private copy of the cached object (once the cache has reached revision `fresh_to`), or
        None when the cache cannot say (not running, behind, or not holding it: the caller asks
        etcd, as kube-apiserver's admission live lookups do)."""
        rc = self._fresh(resource, fresh_to) or await self._fresh_after_wait(resource, fresh_to)
        entry = rc.entries.get(self.storage.key(resource, namespace, name)) if rc else None
        return jsonwire.loads(entry.raw) if entry else None

    async def snapshot(self, resource: str, namespace: str | None, pred: Callable[[dict], bool] | None = None,
                       fresh_to: int = 0) -> tuple[list[dict], int] | None:
        """Private copies of the cached objects under a namespace (all when None), once the cache
        has reached revision `fresh_to`; None when it cannot."""
        rc = self._fresh(resource, fresh_to) or await self._fresh_after_wait(resource, fresh_to)
        if rc is None:
            return None
        keys, revision = rc.range(self.storage.collection(resource, namespace))
        if not keys:
            return [], revision
        entries = [rc.entries[k] for k in keys]
        return [jsonwire.loads(e.raw) for e in entries if pred is None or pred(e.obj)], revision

    def _fresh(self, resource: str, fresh_to: int) -> ResourceCache | None:
        """The running cache when it already holds revision `fresh_to`: every admission read on a
        steady server, answered without an await (a create makes about ten of them)."""
        rc = self.caches.get(resource)
        if rc is not None and rc.revision >= fresh_to and rc.healthy:
            return rc
        return None

    async def _fresh_after_wait(self, resource: str, fresh_to: int) -> ResourceCache | None:
        rc = await self._cache(resource)
        if rc is None or not await rc.wait_fresh(fresh_to):
            return None
        return rc

    async def _cache(self, resource: str) -> ResourceCache | None:
        rc = self.caches.get(resource)
        if rc is not None and rc.task.done() and asyncio.get_running_loop().time() - rc.stopped_at < RETRY_AFTER:
            return None
        if rc is None or rc.task.done():
            rc = self.caches[resource] = ResourceCache(self.storage, resource)
        if not rc.ready.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(rc.ready.wait()), START_TIMEOUT)
            except asyncio.TimeoutError:
                return None
        return rc if rc.healthy else None

    async def close(self) -> None:
        for rc in self.caches.values():
            rc.task.cancel()

    async def serve(self, request: web.Request, root: str, parts: list[str]) -> web.StreamResponse | None:
        """The answer from the cache, or None when the request is not the cache's to serve."""
        q = request.query
        if not self.enabled or request.method != "GET" or q.get("watch") in ("1", "true") or q.get("continue") or \
                q.get("resourceVersionMatch") not in (None, "", "NotOlderThan"):
            return None
        try:
            res, ns, name, sub = parse_path(root, parts)
        except ApiError:
            return None  # discovery, unknown paths: rest.py answers
        if sub is not None or (name is not None and q.get("resourceVersion", "") == ""):
            return None  # a get of the latest is etcd's, as in kube-apiserver
        if ("get" if name else "list") not in res.verbs:
            return None  # create-only kinds (reviews): rest.py refuses the verb
        if name is not None and wants_table(request):
            return None
        await self.authorize(request, "get" if name else "list", res, ns, name, None)
        pred = predicate(q.get("labelSelector"), q.get("fieldSelector"), res.kind)
        limit = _int_param(q, "limit") or 0
        wanted = await self._wanted_revision(q.get("resourceVersion", ""))
        rc = await self._cache(res.store)
        if rc is None or not await rc.wait_fresh(wanted):
            return None
        if name is not None:
            entry = rc.entries.get(self.storage.key(res.store, ns, name))
            if entry is None:
                raise ApiError.not_found(res.plural, name, res.group)
            return web.Response(body=entry.raw, content_type="application/json")
        return self._list(request, res, rc, ns, pred, limit)

    async def _wanted_revision(self, rv: str) -> int:
        if rv == "0":
            return 0
        current = await self.storage.current_revision()
        if rv == "":
            return current
        wanted = _int_param({"resourceVersion": rv}, "resourceVersion") or 0
        if wanted > current:
            raise ApiError.too_large_resource_version(wanted, current)
        return wanted

    def _list(self, request: web.Request, res: Resource, rc: ResourceCache, ns: str | None,
              pred: Callable[[dict], bool] | None, limit: int) -> web.Response:
        prefix = self.storage.collection(res.store, ns)
        keys, revision = rc.range(prefix)
        chosen: list[Entry] = []
        nxt = None
        for i, key in enumerate(keys):
            entry = rc.entries[key]
            if pred is None or pred(entry.obj):
                chosen.append(entry)
                if limit and len(chosen) == limit:
                    if i + 1 < len(keys):
                        nxt = key + b"\0"
                    break
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if nxt:
            meta["continue"] = encode_continue(revision, nxt, prefix)
        if wants_table(request):
            body = dumps(tables.table(res.kind, [e.obj for e in chosen], meta,
                                      request.query.get("includeObject", "Metadata")))
            return web.Response(body=body, content_type="application/json")
        head = dumps({"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": meta})
        # the same bytes as dumps() of the whole list: `..."metadata":{...},"items":[...]}`
        body = b"".join((head[:-1], b',"items":[', b",".join(e.raw for e in chosen), b"]}"))
        return web.Response(body=body, content_type="application/json")
