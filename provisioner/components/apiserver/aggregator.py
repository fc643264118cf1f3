"""The API aggregation layer's proxy: requests for an APIService's group/version go to its Service.

As kube-aggregator: an APIService with `spec.service` (not Local) makes this server forward every
request under /apis/<group>/<version> to one ready endpoint of that Service (EndpointSlices, or the
Endpoints object), over HTTPS checked against `spec.caBundle` for the name
`<service>.<namespace>.svc` (unless `insecureSkipTLSVerify`). The request has been authenticated and
authorized here first; this server then shows its front-proxy client certificate
(--proxy-client-cert-file) and names the user in the request headers the backend trusts
(--requestheader-username-headers and friends): X-Remote-User, one X-Remote-Group per group, and
X-Remote-Extra-<key> per extra value. The caller's own credentials never leave this server.

Which APIServices are served and whether they are Available is kept by apiservices.py; entered
from server.py (`ApiServer.resources`) before the generic resource API.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

import aiohttp
from aiohttp import web

from . import authz
from .errors import ApiError
from .requestinfo import METHOD_VERBS
from .storage import Storage

# request headers never passed on: the caller's credentials, hop-by-hop headers, and anything
# claiming an identity (only this server may name the user to the backend)
DROPPED = frozenset({"authorization", "connection", "keep-alive", "proxy-authorization", "te", "trailer",
                     "transfer-encoding", "upgrade", "host", "content-length", "impersonate-user",
                     "impersonate-group", "impersonate-uid"})
DROPPED_PREFIXES = ("impersonate-extra-",)
RESPONSE_HEADERS = ("Content-Type", "Content-Encoding", "Cache-Control", "Warning", "Audit-Id")


@dataclass(frozen=True)
class RequestHeaderNames:
    """--requestheader-username-headers, -group-headers, -extra-headers-prefix (the first of each
    is what this server sends; every one is stripped from incoming requests)."""
    user: tuple[str, ...] = ("X-Remote-User",)
    group: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefix: tuple[str, ...] = ("X-Remote-Extra-",)

    def is_identity(self, name: str) -> bool:
        low = name.lower()
        return low in {h.lower() for h in self.user + self.group} or \
            low.startswith(tuple(p.lower() for p in self.extra_prefix))


def proxy_headers(incoming: Any, user: str, groups: list[str], extra: dict[str, list[str]],
                  names: RequestHeaderNames = RequestHeaderNames()) -> list[tuple[str, str]]:
    """The headers of the proxied request: the caller's, less credentials and identity claims,
    plus the user as this server authenticated it."""
    out = [(k, v) for k, v in incoming.items()
           if k.lower() not in DROPPED and not k.lower().startswith(DROPPED_PREFIXES)
           and not names.is_identity(k)]
    out.append((names.user[0], user))
    out += [(names.group[0], g) for g in groups]
    for key, values in extra.items():
        # keys are case-insensitive in headers: kube escapes them (RFC 3986 path escaping, lower case)
        header = names.extra_prefix[0] + quote(key.lower(), safe="-!#$&'*+.^_`|~")
        out += [(header, v) for v in values]
    return out


@dataclass
class Backend:
    """Where an available APIService's requests go, as apiservices.py last resolved it."""
    group: str
    version: str
    host: str
    port: int
    server_name: str  # <service>.<namespace>.svc: the name the serving certificate must carry
    ssl: ssl.SSLContext = field(repr=False)


def backend_ssl(ca_bundle_pem: bytes | None, insecure: bool, client_cert: str | None,
                client_key: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_bundle_pem:
        ctx.load_verify_locations(cadata=ca_bundle_pem.decode("ascii", "replace"))
    else:  # no bundle: the system's roots, as kube-aggregator does
        ctx.load_default_certs()
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key or client_cert)
    return ctx


def url_of(backend: Backend, path_qs: str) -> str:
    host = f"[{backend.host}]" if ":" in backend.host else backend.host
    return f"https://{host}:{backend.port}{path_qs}"


Authorize = Callable[..., Any]


class AggregatorProxy:
    """Serves /apis/<group>/<version>/... for the remote APIServices apiservices.py reports."""

    def __init__(self, storage: Storage, authz_chain: Any, names: RequestHeaderNames = RequestHeaderNames()):
        self.storage = storage
        self.authz = authz_chain
        self.names = names
        self.backends: dict[tuple[str, str], Backend | ApiError] = {}  # set by apiservices.py
        self.groups: dict[str, list[str]] = {}  # remote group -> its versions, preferred first
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=None),
                auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def serves(self, parts: list[str]) -> bool:
        """Path segments after /apis: is this a remote group (or one of its versions)?"""
        if len(parts) == 1:
            return parts[0] in self.groups
        return len(parts) >= 2 and (parts[0], parts[1]) in self.backends

    async def handle(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if len(parts) == 1:  # the group document is this server's own, as kube-aggregator's
            await self._authorize_path(request)
            versions = self.groups[parts[0]]
            vs = [{"groupVersion": f"{parts[0]}/{v}", "version": v} for v in versions]
            return web.json_response({"kind": "APIGroup", "apiVersion": "v1", "name": parts[0],
                                      "versions": vs, "preferredVersion": vs[0]})
        if len(parts) == 2:
            await self._authorize_path(request)
        else:
            await self._authorize_resource(request, parts)
        target = self.backends[(parts[0], parts[1])]
        if isinstance(target, ApiError):
            raise target
        return await self._forward(request, target)

    async def _authorize_path(self, request: web.Request) -> None:
        user, groups = request["user"]
        if not await self.authz.allowed_url(user, groups, "get", request.path):
            raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot get path "{request.path}"')

    async def _authorize_resource(self, request: web.Request, parts: list[str]) -> None:
        """kube-apiserver authorizes aggregated requests itself before proxying them."""
        group, rest = parts[0], parts[2:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource, name = rest[0], (rest[1] if len(rest) > 1 else None)
        sub = rest[2] if len(rest) > 2 else None
        if request.method in ("GET", "HEAD") and not sub:
            watch = request.query.get("watch") in ("1", "true")
            verb = "watch" if watch else ("get" if name else "list")
        elif request.method == "DELETE" and not name:
            verb = "deletecollection"
        else:
            verb = METHOD_VERBS.get(request.method, request.method.lower())
        user, groups = request["user"]
        ok, reason = await self.authz.why_not(authz.Attributes(
            user, groups, verb, group, resource, sub, namespace, name,
            field_selector=request.query.get("fieldSelector", ""),
            label_selector=request.query.get("labelSelector", ""),
            extra=request.get("user_extra") or {}))
        if not ok:
            exc = ApiError.forbidden(user, verb, f"{resource}/{sub}" if sub else resource, group, namespace, name)
            if reason:
                exc.message += f": {reason}"
            raise exc

    async def _forward(self, request: web.Request, backend: Backend) -> web.StreamResponse:
        user, groups = request["user"]
        headers = proxy_headers(request.headers, user, groups, request.get("user_extra") or {}, self.names)
        url = url_of(backend, request.rel_url.raw_path_qs)
        body = await request.read() if request.can_read_body else None
        try:
            upstream = await self.session().request(
                request.method, url, headers=headers, data=body, allow_redirects=False,
                ssl=backend.ssl, server_hostname=backend.server_name)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise ApiError(503, "ServiceUnavailable",
                           f"error trying to reach service: {_short(exc)}") from None
        async with upstream:
            resp = web.StreamResponse(status=upstream.status)
            for name in RESPONSE_HEADERS:
                for value in upstream.headers.getall(name, ()):
                    resp.headers.add(name, value)
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError):
                pass  # the backend or the client went away mid-stream (a watch): the stream ends
            return resp


def _short(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
