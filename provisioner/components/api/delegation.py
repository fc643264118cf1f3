"""Delegated authentication and authorization for a component's secure port, as the Kubernetes
components' --authentication-kubeconfig / --authorization-kubeconfig do (k8s.io/apiserver's
delegating authenticator and authorizer).

Who is asking: a client certificate verified against the client CA (the TLS layer checked it; its
CN is the user, its O fields the groups); else a bearer token, checked with a TokenReview through
the authentication kubeconfig (an invalid token is 401); else, with no credentials at all,
system:anonymous. What may they do: a path in --authorization-always-allow-paths (default
/healthz, /readyz, /livez; `/x/*` covers a subtree) answers anyone; a member of system:masters may
do everything; anything else is a SubjectAccessReview (non-resource attributes: the path and the
lower-cased method) through the authorization kubeconfig, denied when there is none. Answers are
cached ten seconds, as upstream's webhook caches, so a scraper costs one review per interval.
Refusals are Status objects in upstream's words (`forbidden: User "system:anonymous" cannot get
path "/metrics"`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web

from .client import ApiStatusError, Client

log = logging.getLogger(__name__)

ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")
ALWAYS_ALLOW_GROUPS = ("system:masters",)
CACHE_SECONDS = 10.0
CACHE_LIMIT = 1024


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": {}, "code": code}
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def certificate_user(peercert: dict | None) -> tuple[str, list[str]] | None:
    """(CN, O values) of a verified client certificate, as the x509 authenticator reads them."""
    if not peercert:
        return None
    name, groups = "", []
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                name = value
            elif attr == "organizationName":
                groups.append(value)
    return name, groups


def path_allowed(path: str, patterns: tuple[str, ...]) -> bool:
    return any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in patterns)


@dataclass
class Cache:
    """A small TTL cache: key -> value for CACHE_SECONDS, cleared whole when it grows too large."""

    entries: dict = field(default_factory=dict)

    def get(self, key):
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key, value) -> None:
        if len(self.entries) >= CACHE_LIMIT:
            self.entries.clear()
        self.entries[key] = (time.monotonic() + CACHE_SECONDS, value)


class Unauthorized(Exception):
    pass


@dataclass
class Delegation:
    """authn: client for TokenReviews (None: tokens are not accepted); authz: client for
    SubjectAccessReviews (None: only always-allowed paths and groups pass)."""

    authn: Client | None = None
    authz: Client | None = None
    always_allow_paths: tuple[str, ...] = ALWAYS_ALLOW_PATHS
    always_allow_groups: tuple[str, ...] = ALWAYS_ALLOW_GROUPS
    tokens: Cache = field(default_factory=Cache)
    decisions: Cache = field(default_factory=Cache)

    async def user_of(self, request: web.Request) -> tuple[str, list[str]]:
        transport = request.transport
        who = certificate_user(transport.get_extra_info("peercert") if transport else None)
        if who is not None:
            return who
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return await self._token_user(header[7:].strip())
        return "system:anonymous", ["system:unauthenticated"]

    async def _token_user(self, token: str) -> tuple[str, list[str]]:
        cached = self.tokens.get(token)
        if cached is None:
            if self.authn is None:
                raise Unauthorized("bearer tokens are not accepted (no --authentication-kubeconfig)")
            review = await self.authn.create("authentication.k8s.io", "v1", "tokenreviews", {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
            result = review.get("status") or {}
            user = result.get("user") or {}
            cached = (user.get("username", ""), list(user.get("groups") or [])) if result.get("authenticated") \
                else False
            self.tokens.put(token, cached)
        if cached is False:
            raise Unauthorized("invalid bearer token")
        return cached

    async def allowed(self, user: str, groups: list[str], verb: str, path: str) -> bool:
        if path_allowed(path, self.always_allow_paths) or set(groups) & set(self.always_allow_groups):
            return True
        if self.authz is None:
            return False
        key = (user, tuple(groups), verb, path)
        decision = self.decisions.get(key)
        if decision is None:
            review = await self.authz.create("authorization.k8s.io", "v1", "subjectaccessreviews", {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": groups, "nonResourceAttributes": {"path": path, "verb": verb}}})
            decision = bool((review.get("status") or {}).get("allowed"))
            self.decisions.put(key, decision)
        return decision

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        verb = request.method.lower()
        try:
            user, groups = await self.user_of(request)
            ok = await self.allowed(user, groups, verb, request.path)
        except Unauthorized as exc:
            log.debug("unauthorized request for %s: %s", request.path, exc)
            return status(401, "Unauthorized", "Unauthorized")
        except (ApiStatusError, OSError) as exc:
            log.warning("delegated authentication/authorization failed for %s: %s", request.path, exc)
            return status(500, "InternalError", f"Internal Server Error: \"{request.path}\": {exc}")
        if not ok:
            return status(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{request.path}"')
        return await handler(request)
