"""What a request is about, read from its URL as kube-apiserver's RequestInfo: verb, group, version,
resource, subresource, namespace, name, or a non-resource path.

Shared by metrics.py and audit.py, which both label requests the way kube-apiserver does before
(and whether or not) a handler understands them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .registry import lookup

CONNECT_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    verb: str  # kube-apiserver's: get list watch create update patch delete deletecollection
    is_resource: bool
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def connect(self) -> bool:
        """Served by the kubelet proxy: metrics call these CONNECT."""
        return self.subresource in CONNECT_SUBRESOURCES

    @property
    def long_running(self) -> bool:
        return self.verb == "watch" or self.connect


def parse(request: web.Request) -> RequestInfo:
    method = request.method
    plain_verb = "get" if method in ("GET", "HEAD") else METHOD_VERBS.get(method, method.lower())
    parts = [p for p in request.path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(plain_verb, False, request.path)
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
    version, rest = (rest[0] if rest else ""), rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and (len(rest) == 2 or lookup(group, version, rest[2])):
        if len(rest) == 2:  # /api/v1/namespaces/<name> is the namespace object itself
            rest = ["namespaces", rest[1]]
        else:
            namespace, rest = rest[1], rest[2:]
    res = lookup(group, version, rest[0]) if rest else None
    if res is None:  # discovery and unknown paths: not a resource request
        return RequestInfo(plain_verb, False, request.path, group, version)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD") and not sub:
        verb = "watch" if request.query.get("watch") in ("1", "true") else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = plain_verb
    return RequestInfo(verb, True, request.path, group, version, res.plural, sub, namespace, name)
