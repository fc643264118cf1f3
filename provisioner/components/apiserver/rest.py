"""HTTP face of the resource API: URL parsing, verbs, lists, watches, content negotiation.

One catch-all route per API root (/api, /apis); the path is parsed against the registry, so a
new resource needs no new route. Lists page through etcd with opaque continue tokens; watches
stream newline-delimited JSON events following Kubernetes' resourceVersion rules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import Any

from aiohttp import web

from . import conversion, crd, discovery, protobuf, tables
from .crud import Registry, Req, dumps
from .errors import ApiError
from .limits import read_body
from .registry import Resource, lookup
from .selectors import predicate
from .storage import Storage
from .watchhub import WatchHubs

log = logging.getLogger("apiserver")
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request size limit
BOOKMARK_INTERVAL = 5.0


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=dumps(obj), status=status, content_type="application/json")
    for w in warnings or []:
        # JSON string escaping: quotes, control characters and non-ASCII (from field names the
        # client sent) can never break or inject a header
        resp.headers.add("Warning", f'299 - "{json.dumps(w)[1:-1]}"')
    return resp


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def parse_path(api_root: str, parts: list[str],
               converted: bool = False) -> tuple[Resource, str | None, str | None, str | None]:
    """(resource, namespace, name, subresource) from the segments after /api or /apis.

    Kinds served through a conversion (events.k8s.io Events, conversion.py; custom resources
    read through a version other than their storage version) are only resolved with
    converted=True, as ResourceAPI asks: other readers of stored bytes (the watch cache) get
    "not found" and leave those requests to ResourceAPI, which converts."""
    if api_root == "api":
        if not parts or parts[0] != "v1":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = "", "v1", parts[1:]
    else:
        if len(parts) < 2:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = parts[0], parts[1], parts[2:]
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces" and lookup(group, version, rest[2]):
        ns, rest = rest[1], rest[2:]
    if not rest:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    res = lookup(group, version, rest[0])
    if res is None or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if ns is not None and not res.namespaced:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in res.subresources:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if res.namespaced and name is not None and ns is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not converted and (conversion.stored_as(res) is not None or crd.read_through_other_version(res)):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return res, ns, name, sub


def encode_continue(rev: int, key: bytes, prefix: bytes) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": key[len(prefix):].decode()})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: bytes) -> tuple[int, bytes]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rev, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1" or not 0 < rev < 2 ** 63 or ".." in start:
            raise ValueError
        return rev, prefix + start.encode()
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ApiError.bad_request("continue key is not valid: incorrect encoded start "
                                   "resourceVersion (version meta.k8s.io/v1)")


def _int_param(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        val = int(raw)
    except ValueError:
        raise ApiError.bad_request(f"invalid {name} {raw!r}: must be an integer")
    if val < 0:
        raise ApiError.bad_request(f"invalid {name} {raw!r}: must not be negative")
    if val >= 2 ** 63:  # as Go's ParseInt/ParseUint: etcd revisions are int64
        raise ApiError.bad_request(f"invalid {name} {raw!r}: value out of range")
    return val


class ResourceAPI:
    def __init__(self, storage: Storage, registry: Registry, authorize: Any):
        self.storage = storage
        self.hubs = WatchHubs(storage)
        self.registry = registry
        self.authorize = authorize

    async def handle(self, request: web.Request, api_root: str) -> web.StreamResponse:
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        disc = discovery.handle(request, api_root, parts)
        if disc is not None:
            return disc
        view, ns, name, sub = parse_path(api_root, parts, converted=True)
        res = conversion.stored_as(view) or view
        q = request.query
        user, groups = request.get("user", ("", []))
        req = Req(res, ns, name, sub, dict(q), user=user, user_agent=request.headers.get("User-Agent", ""),
                  groups=list(groups), view=view if res is not view else None)
        out_view = req.view
        method = request.method
        watching = q.get("watch") in ("1", "true")
        verb = {"GET": "watch" if watching else ("get" if name else "list"), "POST": "create",
                "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method)
        if verb is None:
            raise ApiError.method_not_allowed()
        if sub == "binding" or (sub is None and verb == "create" and name):
            verb = "create"
        await self.authorize(request, verb, view, ns, name, sub)
        body = b""
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            body = await read_body(request, MAX_BODY)  # whole, or 413 past the limit
        if method in ("POST", "PUT", "DELETE") and body:
            if ctype == "application/vnd.kubernetes.protobuf":
                body = dumps(protobuf.decode(body))
            elif ctype not in ("", "application/json", "*/*"):
                raise ApiError.unsupported_media(ctype)
        if method == "GET":
            if watching:
                return await self.watch(request, req)
            if name is None:
                return await self.list(request, req)
            obj = await self.registry.get(req)
            return self._out(request, res, conversion.to_external(out_view, obj))
        if method == "POST":
            if sub == "binding":
                from .decode import parse_json
                binding = parse_json(body)
                if not isinstance(binding, dict):
                    raise ApiError.bad_request("a Binding must be a JSON object")
                return json_response(await self.registry.bind(req, binding), 201)
            if sub == "eviction":
                return json_response(await self.registry.evict(req, self.registry.decode_body(req, body, "Eviction")), 201)
            if name is not None:
                raise ApiError.method_not_allowed()
            obj = self._converted_in(req, self.registry.decode_body(req, body, view.schema_type))
            out = await self.registry.create(req, obj)
            return json_response(conversion.to_external(out_view, crd.as_version(res, out)), 201, req.warnings)
        if method == "PUT":
            if name is None:
                raise ApiError.method_not_allowed()
            kind = "Scale" if sub == "scale" else view.schema_type
            from . import decode
            obj, warnings = decode.decode(body, kind, q.get("fieldValidation"))
            req.warnings += warnings
            out = await self.registry.replace(req, self._converted_in(req, obj))
            return json_response(conversion.to_external(out_view, crd.as_version(res, out)), 200, req.warnings)
        if method == "PATCH":
            if name is None:
                raise ApiError.method_not_allowed()
            out, created = await self.registry.patch(req, request.headers.get("Content-Type", ""), body)
            return json_response(conversion.to_external(out_view, crd.as_version(res, out)),
                                 201 if created else 200, req.warnings)
        # DELETE
        options: dict = {}
        if body.strip():
            try:
                options = json.loads(body)
            except ValueError:
                raise ApiError.bad_request("the body of the request was not valid JSON")
            if not isinstance(options, dict):
                raise ApiError.bad_request("DeleteOptions must be a JSON object")
        if q.get("gracePeriodSeconds"):
            options["gracePeriodSeconds"] = _int_param(q, "gracePeriodSeconds")
        if q.get("propagationPolicy"):  # DeleteOptions may come as query parameters too
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents"):
            options["orphanDependents"] = q["orphanDependents"] == "true"
        if name is None:
            return await self.delete_collection(request, req, options)
        out, _ = await self.registry.delete(req, options)
        return json_response(conversion.to_external(out_view, crd.as_version(res, out)), 200)

    @staticmethod
    def _converted_in(req: Req, obj: dict) -> dict:
        """A body written through a converted view, checked as that view requires and stored
        as the stored kind."""
        if req.view is None:
            return obj
        causes = conversion.events_v1_causes(obj)
        if causes:
            raise ApiError.invalid(req.view.kind, (obj.get("metadata") or {}).get("name", ""), causes, req.view.group)
        return conversion.to_internal(req.view, obj)

    def _out(self, request: web.Request, res: Resource, obj: dict) -> web.Response:
        if wants_table(request) and obj.get("kind") == res.kind:
            return json_response(tables.table(res.kind, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                              request.query.get("includeObject", "Metadata")))
        return json_response(obj)

    async def list(self, request: web.Request, req: Req) -> web.Response:
        res, q = req.res, request.query
        pred = predicate(q.get("labelSelector"), q.get("fieldSelector"), res.kind)
        limit = _int_param(q, "limit") or 0
        rv_param = q.get("resourceVersion", "")
        revision = 0
        match = q.get("resourceVersionMatch")
        if match not in (None, "", "Exact", "NotOlderThan"):
            raise ApiError.invalid("ListOptions", "", [("resourceVersionMatch", f'Unsupported value: "{match}": '
                                   'supported values: "Exact", "NotOlderThan"')], "meta.k8s.io")
        if rv_param not in ("", "0"):
            rv = _int_param(q, "resourceVersion")
            if q.get("resourceVersionMatch") == "Exact":
                revision = rv or 0
        elif q.get("resourceVersionMatch") not in (None, "", "NotOlderThan"):
            raise ApiError(422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                           "forbidden unless resourceVersion is provided")
        prefix = self.storage.collection(res.store, req.namespace)
        start = None
        if q.get("continue"):
            revision, start = decode_continue(q["continue"], prefix)
        items, rev, nxt = await self.storage.list(res.store, req.namespace, limit=limit,
                                                  start_key=start, revision=revision, predicate=pred)
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if nxt:
            meta["continue"] = encode_continue(rev, nxt, prefix)
        if wants_table(request):
            return json_response(tables.table(res.kind, items, meta, q.get("includeObject", "Metadata")))
        shown = req.view or res
        return json_response({"kind": f"{shown.kind}List", "apiVersion": shown.group_version,
                              "metadata": meta, "items": [conversion.to_external(req.view, crd.as_version(res, o))
                                                          for o in items]})

    async def delete_collection(self, request: web.Request, req: Req, options: dict) -> web.Response:
        res, q = req.res, request.query
        pred = predicate(q.get("labelSelector"), q.get("fieldSelector"), res.kind)
        items, rev, _ = await self.storage.list(res.store, req.namespace, predicate=pred)
        out = []
        for obj in items:
            sub = Req(res, obj["metadata"].get("namespace"), obj["metadata"]["name"], None, req.query,
                      req.user, req.user_agent)
            try:
                deleted, _ = await self.registry.delete(sub, options)
                out.append(conversion.to_external(req.view, deleted))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        shown = req.view or res
        return json_response({"kind": f"{shown.kind}List", "apiVersion": shown.group_version,
                              "metadata": {"resourceVersion": str(rev)}, "items": out})

    async def watch(self, request: web.Request, req: Req) -> web.StreamResponse:
        res, q = req.res, request.query
        if q.get("sendInitialEvents") in ("true", "1"):
            raise ApiError.invalid("ListOptions", "", [(
                "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless the "
                "WatchList feature gate is enabled")], "meta.k8s.io")
        pred = predicate(q.get("labelSelector"), q.get("fieldSelector"), res.kind)
        timeout = _int_param(q, "timeoutSeconds") or 1800
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        rv_param = q.get("resourceVersion", "")
        start_rv = None if rv_param in ("", "0") else _int_param(q, "resourceVersion")
        table = wants_table(request)
        include = q.get("includeObject", "Metadata")
        resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def send(kind: str, obj: dict, shared: Any = None) -> None:
            if table and kind in ("ADDED", "MODIFIED", "DELETED"):
                obj = tables.table(res.kind, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, include)
            elif req.view is not None:  # seen through a conversion: this watcher's own encoding
                obj = conversion.to_external(req.view, obj)
            elif crd.as_version(res, obj) is not obj:  # another version of a custom resource
                obj = crd.as_version(res, obj)
            elif shared is not None:  # serialized once for all watchers of this change
                line = shared.lines.get(kind)
                if line is None:
                    line = shared.lines[kind] = dumps({"type": kind, "object": obj}) + b"\n"
                await resp.write(line)
                return
            await resp.write(dumps({"type": kind, "object": obj}) + b"\n")

        last_rev = 0
        if start_rv is None:
            items, rev, _ = await self.storage.list(res.store, req.namespace, predicate=pred)
            for obj in items:
                await send("ADDED", obj)
            start_rv, last_rev = rev, rev
        else:
            last_rev = start_rv
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

        async def pump() -> None:
            try:
                async for ev in self.hubs.watch(res.store, req.namespace, (start_rv or 0) + 1):
                    await queue.put(ev)
            except ApiError as exc:
                await queue.put(exc)
            except Exception:  # etcd gone: end the watch, the client re-lists
                request_id = str(uuid.uuid4())
                log.exception("watch ended, request id %s, on %s", request_id, request.path)
                await queue.put(ApiError.internal(request_id))

        task = asyncio.get_running_loop().create_task(pump())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        try:
            while True:
                now = loop.time()
                if now >= deadline or request.transport is None or request.transport.is_closing():
                    break
                try:
                    ev = await asyncio.wait_for(queue.get(), min(1.0, deadline - now))
                except asyncio.TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark:
                        next_bookmark = loop.time() + BOOKMARK_INTERVAL
                        await send("BOOKMARK", {"kind": res.kind, "apiVersion": (req.view or res).group_version,
                                                "metadata": {"resourceVersion": str(last_rev)}})
                    continue
                if isinstance(ev, ApiError):
                    await resp.write(dumps({"type": "ERROR", "object": ev.status()}) + b"\n")
                    break
                last_rev = ev.revision
                if pred is None:
                    await send(ev.type, ev.obj, ev)
                    continue
                now_in = pred(ev.obj)
                was_in = ev.prev is not None and pred(ev.prev)
                if ev.type == "DELETED":
                    if now_in:
                        await send("DELETED", ev.obj, ev)
                elif now_in:
                    await send("MODIFIED" if was_in else "ADDED", ev.obj, ev)
                elif was_in:
                    await send("DELETED", ev.obj, ev)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            task.cancel()
        return resp

