"""metrics-server: the HTTPS API, metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics.

Paths as the real server serves them behind the API server's aggregation proxy: discovery
(/apis, /apis/metrics.k8s.io, /apis/metrics.k8s.io/v1beta1), nodes and nodes/<name>, pods,
namespaces/<ns>/pods and namespaces/<ns>/pods/<name>, with labelSelector on lists; objects carry
the node's or pod's labels. Every request but /healthz /livez /readyz is authenticated and
authorized (auth.py). /readyz answers once the node and pod informers have synced and a scrape
round has finished.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from aiohttp import web

from provisioner.components.apiserver.errors import ApiError
from provisioner.components.apiserver.selectors import match_labels, parse_labels

from .auth import Authenticator, Authorizer
from .store import API_VERSION, Store

log = logging.getLogger("metrics-server.api")
GROUP, VERSION = API_VERSION.split("/")
PREFIX = f"/apis/{GROUP}/{VERSION}"
RESOURCES = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]
HEALTH = ("/healthz", "/livez", "/readyz")


def status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


class MetricsApi:
    def __init__(self, store: Store, nodes: Any, pods: Any, authn: Authenticator, authz: Authorizer,
                 ready: Callable[[], bool]):
        self.store, self.nodes, self.pods = store, nodes, pods
        self.authn, self.authz = authn, authz
        self.ready = ready

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        for path in HEALTH:
            app.router.add_get(path, self.health)
        app.router.add_get("/apis", self.group_list)
        app.router.add_get(f"/apis/{GROUP}", self.group)
        app.router.add_get(PREFIX, self.resource_list)
        app.router.add_get(f"{PREFIX}/nodes", self.list_nodes)
        app.router.add_get(f"{PREFIX}/nodes/{{name}}", self.get_node)
        app.router.add_get(f"{PREFIX}/pods", self.list_pods)
        app.router.add_get(f"{PREFIX}/namespaces/{{namespace}}/pods", self.list_pods)
        app.router.add_get(f"{PREFIX}/namespaces/{{namespace}}/pods/{{name}}", self.get_pod)
        return app

    # authentication and authorization --------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in HEALTH:
            return await handler(request)
        try:
            user = await self.authn.authenticate(request)
            if user is None:
                return status(401, "Unauthorized", "Unauthorized")
            verb, resource, namespace, name, path = self._attributes(request)
            ok, reason = await self.authz.allowed(user, verb, resource, namespace, name, path)
        except Exception as exc:  # noqa: BLE001 - the API server away: say so, do not guess
            log.warning("authentication or authorization failed: %s", exc)
            return status(503, "ServiceUnavailable", f"authentication or authorization unavailable: {exc}")
        if not ok:
            what = f'resource "{resource}" in API group "{GROUP}"' if resource else f'path "{path}"'
            where = f' in the namespace "{namespace}"' if namespace else ""
            message = f'{resource or "path"} is forbidden: User "{user.name}" cannot {verb} {what}{where}'
            return status(403, "Forbidden", message + (f": {reason}" if reason else ""))
        request["user"] = user
        try:
            return await handler(request)
        except ApiError as exc:  # a bad label selector
            return status(exc.code, exc.reason, exc.message)

    @staticmethod
    def _attributes(request: web.Request) -> tuple:
        """(verb, resource=..., namespace=..., name=...) or (verb, path=...) for a SubjectAccessReview."""
        info = request.match_info
        if request.path.startswith(PREFIX + "/"):
            resource = "nodes" if "/nodes" in request.path else "pods"
            name = info.get("name", "")
            return ("get" if name else "list", resource, info.get("namespace", ""), name, "")
        return ("get", "", "", "", request.path)

    # health and discovery --------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        ok = request.path != "/readyz" or self.ready()
        return web.Response(text="ok" if ok else "metric storage not ready", status=200 if ok else 500)

    async def group_list(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group()]})

    async def group(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group()})

    @staticmethod
    def _group() -> dict:
        version = {"groupVersion": API_VERSION, "version": VERSION}
        return {"name": GROUP, "versions": [version], "preferredVersion": version}

    async def resource_list(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
                                  "resources": RESOURCES})

    # metrics ---------------------------------------------------------------------------------
    @staticmethod
    def _selector(request: web.Request) -> Callable[[dict], bool]:
        reqs = parse_labels(request.query.get("labelSelector"))
        return lambda obj: match_labels(reqs, (obj.get("metadata") or {}).get("labels") or {})

    async def list_nodes(self, request: web.Request) -> web.Response:
        wanted = self._selector(request)
        items = [m for node in sorted(self.nodes.list(), key=lambda n: n["metadata"]["name"])
                 if wanted(node) and (m := self.store.node_metrics(node)) is not None]
        return _list(request, "NodeMetricsList", items)

    async def get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = self.nodes.get(name)
        metrics = self.store.node_metrics(node) if node else None
        if metrics is None:
            return status(404, "NotFound", f'nodemetrics.{GROUP} "{name}" not found')
        return _one(request, metrics)

    async def list_pods(self, request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace")
        wanted = self._selector(request)
        pods = [p for p in self.pods.list() if namespace is None or p["metadata"].get("namespace") == namespace]
        pods.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
        items = [m for pod in pods if wanted(pod) and (m := self.store.pod_metrics(pod)) is not None]
        return _list(request, "PodMetricsList", items)

    async def get_pod(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.pods.get(f"{namespace}/{name}")
        metrics = self.store.pod_metrics(pod) if pod else None
        if metrics is None:
            return status(404, "NotFound", f'podmetrics.{GROUP} "{namespace}/{name}" not found')
        return _one(request, metrics)


def _list(request: web.Request, kind: str, items: list[dict]) -> web.Response:
    if "as=Table" in request.headers.get("Accept", ""):  # kubectl get nodemetrics / podmetrics
        return web.json_response(table(items))
    return web.Response(body=json.dumps({"kind": kind, "apiVersion": API_VERSION, "metadata": {},
                                         "items": items}).encode(), content_type="application/json")


def _one(request: web.Request, item: dict) -> web.Response:
    return web.json_response(table([item]) if "as=Table" in request.headers.get("Accept", "") else item)


COLUMNS = [{"name": name, "type": "string", "format": fmt, "description": text, "priority": 0}
           for name, fmt, text in (("Name", "name", "Name of the resource"), ("CPU", "", "CPU usage"),
                                   ("Memory", "", "Memory usage"), ("Window", "", "Sampling window"))]


def table(items: list[dict]) -> dict:
    """A meta.k8s.io/v1 Table (metrics-server's columns; a pod's usage summed over its containers)."""
    rows = []
    for item in items:
        usages = [item["usage"]] if "usage" in item else [c["usage"] for c in item.get("containers", [])]
        cpu = sum(int(u["cpu"].rstrip("n")) for u in usages)
        memory = sum(int(u["memory"].rstrip("Ki")) for u in usages)
        rows.append({"cells": [item["metadata"]["name"], f"{cpu // 1_000_000}m", f"{memory // 1024}Mi",
                               item.get("window", "")],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": item["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": COLUMNS,
            "rows": rows}
