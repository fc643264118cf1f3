"""metrics-server: who is asking, and may they: delegated authentication and authorization.

As every Kubernetes extension API server: a client certificate signed by the requestheader CA
(and, when --requestheader-allowed-names is set, with one of those common names) is the API
server's front proxy, and the user is the one it names in X-Remote-User, X-Remote-Group and
X-Remote-Extra-* (the header names are configurable); a certificate signed by the client CA is a
user itself (CN, O); a bearer token is checked with a TokenReview. The CAs and names come from the
flags, or else from kube-system/extension-apiserver-authentication, which the API server keeps.
Authorization is a SubjectAccessReview per request (answers cached for ten seconds). Health
paths need neither.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cryptography import x509

CACHE_SECONDS = 10.0
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def load_pems(data: bytes) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(m.group(0)) for m in PEM.finditer(data)]


@dataclass
class AuthConfig:
    requestheader_ca_pem: bytes = b""
    client_ca_pem: bytes = b""
    allowed_names: list[str] = field(default_factory=list)
    username_headers: list[str] = field(default_factory=lambda: ["X-Remote-User"])
    group_headers: list[str] = field(default_factory=lambda: ["X-Remote-Group"])
    extra_prefixes: list[str] = field(default_factory=lambda: ["X-Remote-Extra-"])

    @classmethod
    def from_configmap(cls, data: dict[str, str]) -> "AuthConfig":
        """kube-system/extension-apiserver-authentication's data (lists are JSON)."""
        def names(key: str, default: list[str]) -> list[str]:
            try:
                value = json.loads(data[key]) if data.get(key) else default
            except ValueError:
                value = default
            return [str(v) for v in value or []] or default
        return cls(data.get("requestheader-client-ca-file", "").encode(), data.get("client-ca-file", "").encode(),
                   names("requestheader-allowed-names", []), names("requestheader-username-headers", ["X-Remote-User"]),
                   names("requestheader-group-headers", ["X-Remote-Group"]),
                   names("requestheader-extra-headers-prefix", ["X-Remote-Extra-"]))


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    uid: str = ""


def server_ssl(cert: str, key: str, config: AuthConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    cas = config.requestheader_ca_pem + b"\n" + config.client_ca_pem
    if PEM.search(cas):
        ctx.load_verify_locations(cadata=cas.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL  # token clients and health probes come without one
    return ctx


def _issued_by(cert: x509.Certificate, cas: list[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends
            continue
    return False


def user_from_headers(headers: Any, config: AuthConfig) -> User | None:
    """The user the front proxy names, or None when it names none."""
    name = next((headers.get(h) for h in config.username_headers if headers.get(h)), None)
    if not name:
        return None
    groups = tuple(v for h in config.group_headers for v in headers.getall(h, ()))
    extra: dict[str, list[str]] = {}
    for header, value in headers.items():
        for prefix in config.extra_prefixes:
            if header.lower().startswith(prefix.lower()):
                extra.setdefault(unquote(header[len(prefix):]).lower(), []).append(value)
    return User(name, groups, tuple((k, tuple(v)) for k, v in sorted(extra.items())))


class Authenticator:
    def __init__(self, config: AuthConfig, api: Any):
        self.config = config
        self.requestheader_cas = load_pems(config.requestheader_ca_pem)
        self.client_cas = load_pems(config.client_ca_pem)
        self.api = api
        self._tokens: dict[str, tuple[float, User | None]] = {}

    async def authenticate(self, request: Any) -> User | None:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if der:
            cert = x509.load_der_x509_certificate(der)
            cn = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
            if _issued_by(cert, self.requestheader_cas):
                if self.config.allowed_names and not set(cn) & set(self.config.allowed_names):
                    return None  # a front-proxy CA certificate, but not one of the allowed proxies
                return user_from_headers(request.headers, self.config)
            if _issued_by(cert, self.client_cas) and cn:
                orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)]
                return User(str(cn[0]), tuple(orgs))
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.api is not None:
            return await self._token_user(header[7:].strip())
        return None

    async def _token_user(self, token: str) -> User | None:
        cached = self._tokens.get(token)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        review = await self.api.create("authentication.k8s.io", "v1", "tokenreviews", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = review.get("status") or {}
        user = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            user = User(info.get("username", ""), tuple(info.get("groups") or ()),
                        tuple((k, tuple(v)) for k, v in sorted((info.get("extra") or {}).items())),
                        info.get("uid", ""))
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[token] = (time.monotonic() + CACHE_SECONDS, user)
        return user


class Authorizer:
    """SubjectAccessReviews for resource requests (metrics.k8s.io) and non-resource paths."""

    def __init__(self, api: Any):
        self.api = api
        self._answers: dict[tuple, tuple[float, bool, str]] = {}

    async def allowed(self, user: User, verb: str, resource: str = "", namespace: str = "",
                      name: str = "", path: str = "") -> tuple[bool, str]:
        key = (user, verb, resource, namespace, name, path)
        cached = self._answers.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups), "uid": user.uid,
                                "extra": {k: list(v) for k, v in user.extra}}
        if resource:
            spec["resourceAttributes"] = {"group": "metrics.k8s.io", "version": "v1beta1", "resource": resource,
                                          "verb": verb, "namespace": namespace, "name": name}
        else:
            spec["nonResourceAttributes"] = {"path": path, "verb": verb}
        review = await self.api.create("authorization.k8s.io", "v1", "subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        status = review.get("status") or {}
        answer = bool(status.get("allowed")), str(status.get("reason") or "")
        if len(self._answers) > 1000:
            self._answers.clear()
        self._answers[key] = (time.monotonic() + CACHE_SECONDS, *answer)
        return answer
