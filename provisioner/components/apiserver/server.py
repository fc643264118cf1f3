"""Assembles the aiohttp application: authentication, authorization, health, routes.

Everything a request passes through before reaching rest.py lives here: the error middleware
(every failure leaves as a Status object, never a dropped connection), authentication and the
non-resource authorization checks, /livez /readyz /healthz, /version and /openapi.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import auth, authz, discovery, escalation, openapi, rbac, reviews, selfsubject, tokenrequest
from .aggregator import AggregatorProxy, RequestHeaderNames
from .allocator import Allocator
from .apiservices import ApiServiceController
from .audit import AuditOptions, Auditor
from .cache import WatchCache
from .crud import Registry, Req
from .errors import ApiError
from .limits import check as limits_check
from .limits import read_body
from .metrics import handler as metrics_handler
from .metrics import middleware as metrics_middleware
from .nodeproxy import DEFAULT_ADDRESS_TYPES, KubeletClient, NodeProxy, served_by_kubelet
from .registry import BY_KIND, Resource
from .rest import ResourceAPI, json_response
from .storage import Storage

log = logging.getLogger("apiserver")
# the server's own writes act as kube-apiserver's loopback client does: a superuser
SELF = {"user": "system:apiserver", "groups": [rbac.SUPERUSER_GROUP], "user_agent": "apiserver"}


@dataclass
class Config:
    service_cidr: str = "10.96.0.0/12"
    sa_key_files: list[str] = field(default_factory=list)
    sa_signing_key_file: str | None = None
    sa_issuers: list[str] = field(default_factory=lambda: ["https://kubernetes.default.svc.cluster.local"])
    api_audiences: list[str] = field(default_factory=list)  # empty: the first issuer
    advertise_address: str = "127.0.0.1"
    secure_port: int = 6443
    # the kubelet proxy (nodeproxy.py): --kubelet-client-certificate/-key, --kubelet-certificate-authority
    kubelet_client_certificate: str | None = None
    kubelet_client_key: str | None = None
    kubelet_certificate_authority: str | None = None
    kubelet_preferred_address_types: tuple[str, ...] = DEFAULT_ADDRESS_TYPES
    watch_cache: bool = True  # --watch-cache: lists served from memory (cache.py)
    audit: AuditOptions | None = None  # --audit-policy-file and --audit-log-* (audit.py)
    authorization_modes: list[str] = field(default_factory=lambda: ["Node", "RBAC"])
    admission_plugins: list[str] | None = None  # None: kube-apiserver's defaults
    # the aggregation layer (aggregator.py): --proxy-client-cert-file/-key-file, --requestheader-*
    proxy_client_cert: str | None = None
    proxy_client_key: str | None = None
    requestheader: RequestHeaderNames = field(default_factory=RequestHeaderNames)
    # published in kube-system/extension-apiserver-authentication for aggregated servers
    client_ca_file: str | None = None
    requestheader_client_ca_file: str | None = None
    requestheader_allowed_names: list[str] = field(default_factory=list)


class ApiServer:
    def __init__(self, storage: Storage, config: Config):
        self.storage = storage
        self.config = config
        self.registry = Registry(storage, Allocator(storage, config.service_cidr), config.admission_plugins)
        self.authn = auth.Authenticator(storage, auth.load_public_keys(config.sa_key_files),
                                        config.sa_issuers, config.api_audiences)
        self.rbac = rbac.Authorizer(storage)
        self.authz = authz.build(config.authorization_modes, self.rbac, storage)
        self.registry.admission.append(escalation.EscalationCheck(storage, self.rbac))
        self.api = ResourceAPI(storage, self.registry, self.authorize)
        self.auditor = Auditor.from_options(config.audit)
        self.registry.admission.append(limits_check)  # object sizes, with kube-apiserver's messages
        self.bootstrapped = asyncio.Event()
        self.watch_cache = WatchCache(storage, self.authorize, enabled=config.watch_cache)
        self.nodeproxy = NodeProxy(storage, KubeletClient(
            config.kubelet_client_certificate, config.kubelet_client_key, config.kubelet_certificate_authority,
            config.kubelet_preferred_address_types), self.authorize)
        self.aggregator = AggregatorProxy(storage, self.authz, config.requestheader)
        self.apiservices = ApiServiceController(self.registry, self.aggregator, config)

    # authorization --------------------------------------------------------------------------
    async def authorize(self, request: web.Request, verb: str, res: Resource | None, ns: str | None,
                        name: str | None, sub: str | None) -> None:
        user, groups = request["user"]
        if res is None:
            if not await self.authz.allowed_url(user, groups, verb, request.path):
                raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{request.path}"')
            return
        ok, reason = await self.authz.why_not(authz.Attributes(
            user, groups, verb, res.group, res.plural, sub, ns, name,
            field_selector=request.query.get("fieldSelector", ""),
            label_selector=request.query.get("labelSelector", "")))
        if not ok:
            plural = f"{res.plural}/{sub}" if sub else res.plural
            exc = ApiError.forbidden(user, verb, plural, res.group, ns, name)
            if reason:
                exc.message += f": {reason}"
            raise exc

    # middleware -----------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            peercert = request.transport.get_extra_info("peercert") if request.transport else None
            user = await self.authn.authenticate(peercert, request.headers.get("Authorization"))
            if user is None:
                if request.path.rstrip("/") in auth.ANONYMOUS_PATHS or \
                        request.path.startswith(("/livez/", "/readyz/", "/healthz/")):
                    request["user"] = ("system:anonymous", ["system:unauthenticated"])
                    return await handler(request)
                raise ApiError.unauthorized()
            request["user"] = (user.name, user.groups)
            request["user_extra"] = user.extra  # passed on by the aggregation proxy
            if not request.path.startswith(("/api/", "/apis/")) or self._is_discovery(request.path):
                if request.path.rstrip("/") not in auth.ANONYMOUS_PATHS:
                    await self.authorize(request, request.method.lower() if request.method != "GET" else "get",
                                         None, None, None, None)
            return await handler(request)
        except ApiError as exc:
            return json_response(exc.status(), exc.code)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:  # never a dropped connection: report the failure as a Status
            request_id = str(uuid.uuid4())
            log.exception("internal error, request id %s, on %s %s", request_id, request.method, request.path)
            resp = json_response(ApiError.internal(request_id).status(), 500)
            resp.headers["Audit-Id"] = request_id
            return resp

    @staticmethod
    def _is_discovery(path: str) -> bool:
        parts = [p for p in path.split("/") if p]
        if parts[0] == "api":
            return len(parts) <= 2
        return len(parts) <= 3 and (len(parts) < 3 or parts[1] in {r.group for r in BY_KIND.values()})

    # handlers -------------------------------------------------------------------------------
    async def etcd_ok(self) -> bool:
        try:
            await asyncio.wait_for(self.storage.current_revision(), 2)
            return True
        except Exception:
            return False

    def health(self, kind: str):  # noqa: ANN201
        async def handler(request: web.Request) -> web.Response:
            checks = [("ping", True)]
            if kind != "livez":
                checks.append(("etcd", await self.etcd_ok()))
            if kind == "readyz":
                checks.append(("poststarthook/bootstrap-controller", self.bootstrapped.is_set()))
            only = request.match_info.get("check")
            if only:  # /readyz/etcd and the like: one check, as kube-apiserver serves them
                checks = [(n, v) for n, v in checks if n == only]
                if not checks:
                    return web.Response(text="404 page not found\n", status=404)
                ok = checks[0][1]
                return web.Response(text="ok" if ok else "internal server error: reason withheld",
                                    status=200 if ok else 500)
            ok = all(v for _, v in checks)
            if "verbose" in request.query:
                lines = [f"[+]{n} ok" if v else f"[-]{n} failed: reason withheld" for n, v in checks]
                lines.append(f"{kind} check passed" if ok else f"{kind} check failed")
                return web.Response(text="\n".join(lines) + "\n", status=200 if ok else 500)
            return web.Response(text="ok" if ok else f"{kind} check failed", status=200 if ok else 500)
        return handler

    async def resources(self, request: web.Request) -> web.StreamResponse:
        root = "api" if request.path.startswith("/api/") or request.path == "/api" else "apis"
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        kubelet_target = served_by_kubelet(parts) if root == "api" else None
        if kubelet_target:  # logs, exec, attach, port-forward, nodes/proxy: the kubelet answers
            return await self.nodeproxy.handle(request, kubelet_target)
        if root == "apis" and self.aggregator.serves(parts):  # an APIService of another server
            return await self.aggregator.handle(request, parts)
        cached = await self.watch_cache.serve(request, root, parts)
        if cached is not None:  # lists (and gets at a resourceVersion) from the watch cache
            return cached
        if root == "api" and len(parts) == 6 and parts[3] == "serviceaccounts" and parts[5] == "token" \
                and request.method == "POST":
            return await self.token_request(request, parts[2], parts[4])
        delegated = reviews.served(parts) if root == "apis" else None
        if delegated:
            return await reviews.handle(request, self.authn, self.authz.chain, *delegated)
        review = selfsubject.served(parts) if root == "apis" else None
        if review:
            return await selfsubject.handle(request, self.authz, *review)
        return await self.api.handle(request, root)

    async def token_request(self, request: web.Request, ns: str, name: str) -> web.Response:
        res = BY_KIND[("", "ServiceAccount")]
        await self.authorize(request, "create", res, ns, name, "token")
        if not self.config.sa_signing_key_file:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        sa = await self.registry.get(Req(res, ns, name))
        from . import protobuf
        from .decode import parse_json
        raw = await read_body(request, 1024 * 1024)  # whole, or 413
        if request.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            body: Any = protobuf.decode(raw)
        else:
            body = parse_json(raw or b"{}")
        spec = (body.get("spec") if isinstance(body, dict) else None) or {}
        seconds = spec.get("expirationSeconds") or 3600
        if not isinstance(seconds, int) or seconds < 600:
            raise ApiError.invalid("TokenRequest", name, [(
                "spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration less than 10 minutes")],
                "authentication.k8s.io")
        audiences = spec.get("audiences") or self.authn.audiences
        bound, bound_ref = await tokenrequest.bound_claims(self.storage, *request["user"], ns, name,
                                                           spec.get("boundObjectRef"))
        with open(self.config.sa_signing_key_file, "rb") as fh:
            token, exp = auth.sign_service_account_token(fh.read(), self.config.sa_issuers[0], ns, name,
                                                         sa["metadata"]["uid"], audiences, seconds, bound)
        import datetime as dt
        return json_response({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                              "metadata": {"name": name, "namespace": ns}, "spec": {
                                  "audiences": audiences, "expirationSeconds": seconds,
                                  **({"boundObjectRef": bound_ref} if bound_ref else {})},
                              "status": {"token": token, "expirationTimestamp": dt.datetime.fromtimestamp(
                                  exp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}, 201)

    async def bootstrap(self) -> None:
        """Default namespaces, the kubernetes Service and the default RBAC objects."""
        while True:
            try:
                await self.registry.ensure_defaults()
                for plural, obj in rbac.default_objects():
                    await self._ensure_default_rbac(plural, obj)
                self.bootstrapped.set()
                return
            except Exception as exc:
                log.warning("bootstrap waiting for etcd: %s", exc)
                await asyncio.sleep(1)

    async def _ensure_default_rbac(self, plural: str, obj: dict) -> None:
        """Create a default role or binding, or give a default role back the rules it lacks.

        As Kubernetes reconciles its bootstrap roles: rules are only added, never removed, so
        an administrator's additions survive; an autoupdate annotation of "false" opts out.
        Another server doing the same at once is fine."""
        name = obj["metadata"]["name"]
        req = Req(BY_KIND[("rbac.authorization.k8s.io", obj["kind"])], None, name, **SELF)
        current = await self.storage.get(plural, None, name)
        try:
            if current is None:
                await self.registry.create(req, obj)
                return
            opted_out = (current["metadata"].get("annotations") or {}).get(rbac.AUTOUPDATE) == "false"
            missing = [r for r in obj.get("rules", []) if r not in (current.get("rules") or [])]
            if plural == "clusterroles" and missing and not opted_out:
                log.info("adding %d missing rule(s) to default cluster role %s", len(missing), name)

                def reconcile(cur: dict) -> dict:
                    have = cur.get("rules") or []
                    cur["rules"] = have + [r for r in obj["rules"] if r not in have]
                    return cur
                await self.registry.update(req, reconcile, precondition_rv=None)
        except ApiError as exc:
            if exc.reason not in ("AlreadyExists", "Conflict"):  # another server did the same: fine
                raise

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=4 * 1024 * 1024)
        for kind in ("livez", "readyz", "healthz"):
            app.router.add_get(f"/{kind}", self.health(kind))
            app.router.add_get(f"/{kind}/{{check:.+}}", self.health(kind))
        app.router.add_get("/version", discovery.version)
        app.router.add_get("/version/", discovery.version)
        # outermost, so refusals by authentication and authorization are counted too
        app.middlewares.insert(0, metrics_middleware)
        app.router.add_get("/metrics", metrics_handler(self.storage))
        if self.auditor:  # inside authentication: events name the user
            app.middlewares.append(self.auditor.middleware)
        app.router.add_get("/openapi/v2", openapi.handle_v2)
        app.router.add_get("/openapi/v3", openapi.handle_v3)
        app.router.add_get("/openapi/v3/{tail:.*}", openapi.handle_v3)
        app.router.add_route("*", "/api", self.resources)
        app.router.add_route("*", "/apis", self.resources)
        app.router.add_route("*", "/api/{tail:.*}", self.resources)
        app.router.add_route("*", "/apis/{tail:.*}", self.resources)

        async def on_startup(_: web.Application) -> None:
            task = asyncio.get_running_loop().create_task(self.bootstrap())
            self.registry.background.add(task)
            self.registry.background.add(asyncio.get_running_loop().create_task(self.apiservices.run(self.bootstrapped)))
        app.on_startup.append(on_startup)

        async def on_cleanup(_: web.Application) -> None:
            await self.watch_cache.close()
            await self.aggregator.close()
        app.on_cleanup.append(on_cleanup)
        return app
