"""Object storage on etcd, the way kube-apiserver does it.

The API server's only state lives here: objects are JSON under
`/registry/<resource>/<namespace>/<name>`, an object's resourceVersion is the etcd mod revision of
its key, and every write is one etcd transaction comparing revisions, so several API servers on one
etcd act as one. Values may pass through an at-rest transformer (encryption.py) on the way.

etcd client: aetcd (asyncio, maintained). Its own `connect` only opens plaintext channels, so
`TLSClient` builds the same stubs on a TLS channel for --etcd-cafile/certfile/keyfile.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import aetcd
from aetcd import rpc, utils, watcher
from aetcd.exceptions import RevisionCompactedError

from . import jsonwire
from .errors import ApiError
from .metrics import etcd_timer


class TLSClient(aetcd.Client):
    """aetcd client that can speak TLS with client certificates to etcd."""

    def __init__(self, host: str, port: int, cafile: str | None = None,
                 certfile: str | None = None, keyfile: str | None = None, **kw: Any):
        super().__init__(host=host, port=port, **kw)
        self._tls = (cafile, certfile, keyfile)

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        cafile, certfile, keyfile = self._tls
        if not cafile:
            return await super().connect()
        import grpc

        def read(p: str | None) -> bytes | None:
            return open(p, "rb").read() if p else None

        creds = grpc.ssl_channel_credentials(read(cafile), read(keyfile), read(certfile))
        self.channel = grpc.aio.secure_channel(f"{self._host}:{self._port}", creds,
                                               options=list(self._options.items()))
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout,
                                        metadata=self.metadata)
        self._connected.set()


def parse_etcd_url(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port or 2379)


class Transformer:
    """Identity at-rest transform; encryption.py provides the real ones."""

    def to_storage(self, resource: str, data: bytes, key: bytes = b"") -> bytes:
        """`key` is the etcd key the value is stored under (aesgcm authenticates it)."""
        return data

    def from_storage(self, resource: str, data: bytes, key: bytes = b"") -> bytes:
        return data


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict
    revision: int
    prev: dict | None = None
    key: bytes = b""
    # the serialized event line, built once and shared by every watcher that sends it unchanged
    lines: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


WATCH_EVENT_CACHE = 4096  # recent events, shared by concurrent watchers of the same change


class Storage:
    def __init__(self, client: aetcd.Client, transformer: Transformer | None = None,
                 prefix: str = "/registry"):
        self.client = client
        self.transformer = transformer or Transformer()
        self.prefix = prefix
        # Each watch has its own etcd watch (so start revisions and 410s stay exact), but N
        # watchers of one change decode it once: events are shared read-only by (key, revision).
        self._events: OrderedDict[tuple[bytes, int, str], WatchEvent] = OrderedDict()
        self.informer: Any = None  # the watch cache (cache.py), once the server has one
        # resource -> revision of this server's last write to it: informer reads wait for the
        # cache to reach it, so a client reads its own writes through this server
        self.written: dict[str, int] = {}

    # informer reads -----------------------------------------------------------------------------
    # What kube-apiserver's admission plugins read through informers: the watch cache's copy,
    # never behind this server's own writes, possibly a moment behind other servers'; etcd itself
    # when the cache has no answer (a miss is looked up live, so an object created a moment ago
    # elsewhere is found).
    def _wrote(self, resource: str, revision: int) -> None:
        if revision > self.written.get(resource, 0):
            self.written[resource] = revision

    async def cached_get(self, resource: str, namespace: str | None, name: str,
                         memo: dict | None = None) -> dict | None:
        """`memo`: one request's informer reads (Req.reads): the same question in the same
        request gets the same answer, shared by its readers, who must not change it."""
        if memo is not None:
            key = (resource, namespace, name)
            if key not in memo:
                memo[key] = await self.cached_get(resource, namespace, name)
            return memo[key]
        if self.informer is not None:
            obj = await self.informer.lookup(resource, namespace, name, self.written.get(resource, 0))
            if obj is not None:
                return obj
        return await self.get(resource, namespace, name)

    async def cached_list(self, resource: str, namespace: str | None, *,
                          predicate: Callable[[dict], bool] | None = None,
                          memo: dict | None = None) -> tuple[list[dict], int, None]:
        if memo is not None and predicate is None:
            key = (resource, namespace)
            if key not in memo:
                memo[key] = await self.cached_list(resource, namespace)
            return memo[key]
        if self.informer is not None:
            snap = await self.informer.snapshot(resource, namespace, predicate, self.written.get(resource, 0))
            if snap is not None:
                return snap[0], snap[1], None
        items, rev, _ = await self.list(resource, namespace, predicate=predicate)
        return items, rev, None

    # keys -----------------------------------------------------------------------------------
    def key(self, resource: str, namespace: str | None, name: str) -> bytes:
        if namespace:
            return f"{self.prefix}/{resource}/{namespace}/{name}".encode()
        return f"{self.prefix}/{resource}/{name}".encode()

    def collection(self, resource: str, namespace: str | None) -> bytes:
        if namespace:
            return f"{self.prefix}/{resource}/{namespace}/".encode()
        return f"{self.prefix}/{resource}/".encode()

    # decoding ---------------------------------------------------------------------------------
    def _decode(self, resource: str, value: bytes, rev: int, key: bytes = b"") -> dict:
        obj = jsonwire.loads(self.transformer.from_storage(resource, value, key))
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
        return obj

    def _encode(self, resource: str, obj: dict, key: bytes = b"") -> bytes:
        meta = obj.get("metadata", {})
        stored = dict(obj, metadata={k: v for k, v in meta.items() if k != "resourceVersion"})
        return self.transformer.to_storage(resource, jsonwire.dumps(stored), key)

    # reads ------------------------------------------------------------------------------------
    async def current_revision(self) -> int:
        await self.client.connect()
        resp = await self.client.kvstub.Range(
            rpc.RangeRequest(key=b"\0", limit=1, count_only=True))
        return resp.header.revision

    async def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        await self.client.connect()
        with etcd_timer("get", resource):
            resp = await self.client.kvstub.Range(rpc.RangeRequest(key=self.key(resource, namespace, name)))
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return self._decode(resource, kv.value, kv.mod_revision, kv.key)

    async def list(self, resource: str, namespace: str | None, *, limit: int = 0,
                   start_key: bytes | None = None, revision: int = 0,
                   predicate: Callable[[dict], bool] | None = None) -> tuple[list[dict], int, bytes | None]:
        """Objects in the collection, the list revision, and the key to continue from (or None).

        With a predicate and a limit, reads on in pages until `limit` matches are found, as
        kube-apiserver does, so a continue token is never handed out for an empty page.
        """
        await self.client.connect()
        prefix = self.collection(resource, namespace)
        end = utils.prefix_range_end(prefix)
        key = start_key or prefix
        items: list[dict] = []
        while True:
            want = (limit - len(items)) if limit else 0
            page = max(want, 100) if (predicate and want) else want
            try:
                with etcd_timer("list", resource):
                    resp = await self.client.kvstub.Range(rpc.RangeRequest(
                        key=key, range_end=end, limit=page + 1 if page else 0, revision=revision))
            except rpc.AioRpcError as exc:
                if "compacted" in (exc.details() or ""):
                    raise ApiError.gone("The provided continue parameter is too old to display "
                                        "a consistent list result. You can start a new list "
                                        "without the continue parameter.") from exc
                if "future revision" in (exc.details() or ""):
                    raise ApiError.too_large_resource_version(revision, await self.current_revision()) from exc
                raise
            revision = revision or resp.header.revision
            kvs = list(resp.kvs)
            more = bool(page) and len(kvs) > page
            kvs = kvs[:page] if page else kvs
            for kv in kvs:
                obj = self._decode(resource, kv.value, kv.mod_revision, kv.key)
                if predicate is None or predicate(obj):
                    items.append(obj)
                    if limit and len(items) == limit:
                        nxt = kv.key + b"\0"
                        if nxt == end or (kv is kvs[-1] and not more):
                            return items, revision, None
                        return items, revision, nxt
            if not more:
                return items, revision, None
            key = kvs[-1].key + b"\0"

    # writes -----------------------------------------------------------------------------------
    async def _txn(self, compare: list, success: list, operation: str = "update",
                   resource: str = "") -> tuple[bool, Any]:
        await self.client.connect()
        req = rpc.TxnRequest(compare=compare, success=success, failure=[])
        with etcd_timer(operation, resource):
            resp = await self.client.kvstub.Txn(req)
        return resp.succeeded, resp

    async def count(self, resource: str) -> int:
        """How many objects of a resource are stored (apiserver_storage_objects)."""
        await self.client.connect()
        prefix = self.collection(resource, None)
        with etcd_timer("count", resource):
            resp = await self.client.kvstub.Range(rpc.RangeRequest(
                key=prefix, range_end=utils.prefix_range_end(prefix), count_only=True))
        return resp.count

    @staticmethod
    def _cmp_mod(key: bytes, rev: int) -> Any:
        return rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=rev)

    async def create(self, resource: str, namespace: str | None, name: str, obj: dict) -> dict:
        key = self.key(resource, namespace, name)
        ok, resp = await self._txn(
            [rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
            [rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=self._encode(resource, obj, key)))],
            "create", resource)
        if not ok:
            raise ApiError.already_exists(resource, name)
        self._wrote(resource, resp.header.revision)
        obj["metadata"]["resourceVersion"] = str(resp.header.revision)
        return obj

    async def update(self, resource: str, namespace: str | None, name: str, obj: dict,
                     expected_rev: int) -> dict:
        """Write obj if the key still has mod revision `expected_rev`; 409 Conflict if not."""
        key = self.key(resource, namespace, name)
        ok, resp = await self._txn(
            [self._cmp_mod(key, expected_rev)],
            [rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=self._encode(resource, obj, key)))],
            "update", resource)
        if not ok:
            raise ApiError.conflict(resource, name)
        self._wrote(resource, resp.header.revision)
        obj["metadata"]["resourceVersion"] = str(resp.header.revision)
        return obj

    async def delete(self, resource: str, namespace: str | None, name: str, expected_rev: int) -> int:
        key = self.key(resource, namespace, name)
        ok, resp = await self._txn(
            [self._cmp_mod(key, expected_rev)],
            [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))], "delete", resource)
        if not ok:
            raise ApiError.conflict(resource, name)
        self._wrote(resource, resp.header.revision)
        return resp.header.revision

    async def put_raw_if(self, key: bytes, value: bytes, expected_rev: int) -> bool:
        """Compare-and-put on a raw key (allocators); expected_rev 0 means 'must not exist'."""
        cmp = (rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)
               if expected_rev == 0 else self._cmp_mod(key, expected_rev))
        ok, _ = await self._txn([cmp], [rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))])
        return ok

    async def delete_raw(self, key: bytes) -> None:
        await self.client.connect()
        await self.client.kvstub.DeleteRange(rpc.DeleteRangeRequest(key=key))

    # watch ------------------------------------------------------------------------------------
    def _event(self, resource: str, ev: Any) -> WatchEvent | None:
        """The decoded event for an etcd event, from the shared cache when another watcher has
        already decoded it. Callers must not mutate it."""
        cache_key = (ev.kv.key, ev.kv.mod_revision, ev.kind)
        hit = self._events.get(cache_key)
        if hit is not None:
            return hit
        # etcd sends an empty prev_kv (not none) for creations and compacted history
        has_prev = ev.prev_kv is not None and bool(ev.prev_kv.value)
        if ev.kind == "DELETE":
            if not has_prev:
                return None
            out = WatchEvent("DELETED", self._decode(resource, ev.prev_kv.value, ev.kv.mod_revision, ev.kv.key),
                             ev.kv.mod_revision, key=ev.kv.key)
        else:
            obj = self._decode(resource, ev.kv.value, ev.kv.mod_revision, ev.kv.key)
            prev = (self._decode(resource, ev.prev_kv.value, ev.prev_kv.mod_revision, ev.kv.key)
                    if has_prev and ev.kv.version > 1 else None)
            out = WatchEvent("ADDED" if ev.kv.version == 1 else "MODIFIED", obj, ev.kv.mod_revision, prev,
                             ev.kv.key)
        self._events[cache_key] = out
        if len(self._events) > WATCH_EVENT_CACHE:
            self._events.popitem(last=False)
        return out

    async def watch(self, resource: str, namespace: str | None, start_revision: int,
                    name: str | None = None) -> AsyncIterator[WatchEvent]:
        """Changes from `start_revision` on (inclusive, etcd semantics), with the previous state.

        Raises ApiError.gone when that revision has been compacted.
        """
        await self.client.connect()
        key = self.key(resource, namespace, name) if name else self.collection(resource, namespace)
        try:
            w = await self.client.watch(key, range_end=None if name else utils.prefix_range_end(key),
                                        start_revision=start_revision, prev_kv=True)
        except RevisionCompactedError as exc:
            raise ApiError.gone(f"too old resource version: {start_revision - 1} "
                                f"({exc.compacted_revision})") from exc
        try:
            async for ev in w:
                shared = self._event(resource, ev)
                if shared is not None:
                    yield shared
        except RevisionCompactedError as exc:
            raise ApiError.gone(f"too old resource version: {start_revision - 1} "
                                f"({exc.compacted_revision})") from exc
        finally:
            await asyncio.shield(w.cancel())
