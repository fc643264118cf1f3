"""/metrics: kube-apiserver's core metrics, in Prometheus text format via prometheus-client.

Names and labels are kube-apiserver's, so its dashboards and alerts work unchanged:
- apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}
- apiserver_request_duration_seconds (same labels but code), long-running requests excluded
- apiserver_current_inflight_requests{request_kind="readOnly"|"mutating"}
- apiserver_storage_objects{resource} (counted in etcd when scraped)
- etcd_request_duration_seconds{operation,type} (storage.py times each etcd call through `etcd_timer`)
- apiserver_watch_events_total{group,version,kind} (watchhub.py counts events passed to watchers)

Each process has one registry (REGISTRY, not prometheus-client's global one, so tests and tools
importing this module get no process metrics twice). The middleware is installed outermost by
server.py; who may read /metrics is RBAC's nonResourceURLs decision, made in server.py's middleware.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from . import requestinfo
from .registry import RESOURCES

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
# kube-apiserver's buckets for request latency
REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15,
                   20, 30, 45, 60)
ETCD_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15,
                20, 30, 45, 60)

REQUESTS = Counter("apiserver_request_total", "Counter of apiserver requests broken out for each verb, dry "
                   "run value, group, version, resource, scope, component, and HTTP response code.",
                   REQUEST_LABELS + ("code",), registry=REGISTRY)
DURATION = Histogram("apiserver_request_duration_seconds", "Response latency distribution in seconds for each "
                     "verb, dry run value, group, version, resource, subresource, scope and component.",
                     REQUEST_LABELS, buckets=REQUEST_BUCKETS, registry=REGISTRY)
INFLIGHT = Gauge("apiserver_current_inflight_requests", "Maximal number of currently used inflight request "
                 "limit of this apiserver per request kind in last second.", ("request_kind",),
                 registry=REGISTRY)
STORED = Gauge("apiserver_storage_objects", "Number of stored objects at the time of last check split by kind.",
               ("resource",), registry=REGISTRY)
ETCD = Histogram("etcd_request_duration_seconds", "Etcd request latency in seconds for each operation and "
                 "object type.", ("operation", "type"), buckets=ETCD_BUCKETS, registry=REGISTRY)
WATCH_EVENTS = Counter("apiserver_watch_events_total", "Number of events sent in watch clients",
                       ("group", "version", "kind"), registry=REGISTRY)
# Children resolved once per label set: prometheus-client's labels() validates and locks on every
# call, and a request records three series
_INFLIGHT = {kind: INFLIGHT.labels(kind) for kind in ("readOnly", "mutating")}
for _gauge in _INFLIGHT.values():
    _gauge.set(0)
_READ_ONLY_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_CHILDREN: dict[tuple, Any] = {}

# kube-apiserver's verb label for each request verb (APPLY and CONNECT are decided below)
VERB_LABELS = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT",
               "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE"}


def resource_label(res: Any) -> str:
    """kube-apiserver's name for a resource in metrics: plural, then `.group` outside core."""
    return f"{res.plural}.{res.group}" if res.group else res.plural


def request_labels(request: web.Request) -> tuple[tuple[str, ...], bool]:
    """(label values in REQUEST_LABELS order, long_running) for a request, as kube-apiserver
    labels it."""
    info = requestinfo.parse(request)
    dry_run = "All" if request.query.get("dryRun") == "All" else ""
    if not info.is_resource:
        return (request.method, dry_run, info.group, info.version, "", "", "", "apiserver"), False
    verb = VERB_LABELS.get(info.verb, info.verb.upper())
    if info.connect:
        verb = "CONNECT"
    elif info.verb == "patch" and "apply-patch" in request.headers.get("Content-Type", ""):
        verb = "APPLY"
    scope = "resource" if info.name else ("namespace" if info.namespace else "cluster")
    return ((verb, dry_run, info.group, info.version, info.resource, info.subresource, scope,
             "apiserver"), info.long_running)


def _child(metric: Any, values: tuple[str, ...]) -> Any:
    key = (metric, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return child


@web.middleware
async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    labels, long_running = request_labels(request)
    inflight = None if long_running else _INFLIGHT[
        "readOnly" if request.method in _READ_ONLY_METHODS else "mutating"]
    if inflight is not None:
        inflight.inc()
    start = time.perf_counter()
    code = 500
    try:
        resp = await handler(request)
        code = resp.status
        return resp
    except web.HTTPException as exc:
        code = exc.status
        raise
    finally:
        if inflight is not None:
            inflight.dec()
            _child(DURATION, labels).observe(time.perf_counter() - start)
        _child(REQUESTS, (*labels, str(code))).inc()


@contextmanager
def etcd_timer(operation: str, resource: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        _child(ETCD, (operation, _type_label(resource))).observe(time.perf_counter() - start)


_TYPE_BY_PLURAL = {r.plural: resource_label(r) for r in RESOURCES}
_GVK_BY_PLURAL = {r.plural: (r.group, r.version, r.kind) for r in RESOURCES}


def _type_label(resource: str) -> str:
    return _TYPE_BY_PLURAL.get(resource, resource)


def watch_event(resource: str) -> None:
    group, version, kind = _GVK_BY_PLURAL.get(resource, ("", "", resource))
    _child(WATCH_EVENTS, (group, version, kind)).inc()


def handler(storage: Any) -> Any:
    """The /metrics handler; object counts are read from etcd (`storage.count`) at each scrape."""
    async def handle(_: web.Request) -> web.Response:
        for res in RESOURCES:
            try:
                STORED.labels(resource_label(res)).set(await storage.count(res.store))
            except Exception:  # etcd away: the last counts stay, as with kube-apiserver's periodic check
                break
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
    return handle
