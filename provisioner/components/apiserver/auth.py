"""Authentication: client certificates, service-account JWTs, bootstrap tokens.

Users: a client certificate's CN is the user and its O entries the groups; a bearer token is a
service-account JWT verified with --service-account-key-file, or a bootstrap token
(`<id>.<secret>`) matched against its kube-system Secret. Bound service-account tokens must
name one of the API audiences (--api-audiences, by default the issuer) in `aud`. Everyone
authenticated is also in `system:authenticated`. Authorization (RBAC) is in rbac.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt

from .storage import Storage

ANONYMOUS_PATHS = ("/livez", "/readyz", "/healthz", "/version")
LEGACY_ISSUER = "kubernetes/serviceaccount"
# the only extra groups a bootstrap token may carry, as Kubernetes' bootstrap token authenticator
BOOTSTRAP_TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
BOOTSTRAP_GROUP = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")


@dataclass
class User:
    name: str
    groups: list[str] = field(default_factory=list)
    extra: dict[str, list[str]] = field(default_factory=dict)
    uid: str = ""
    audiences: list[str] = field(default_factory=list)  # those the credential was accepted for


def user_from_peercert(cert: dict | None) -> User | None:
    if not cert:
        return None
    cn, orgs = _subject_identity(cert.get("subject", ()))
    if not cn:
        return None
    return User(cn, [*orgs, "system:authenticated"])


@lru_cache(maxsize=1024)
def _subject_identity(subject: tuple) -> tuple[str, tuple[str, ...]]:
    """(common name, organizations) of a certificate subject: read once per distinct subject,
    as every request on a connection presents the same one."""
    cn, orgs = "", []
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return cn, tuple(orgs)


def load_public_keys(paths: list[str]) -> list[Any]:
    """PEM public keys (or private keys, whose public half is used) from the given files."""
    from cryptography.hazmat.primitives import serialization

    keys = []
    for path in paths:
        data = open(path, "rb").read()
        for m in re.finditer(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", data, re.S):
            pem = m.group(0) + b"\n"
            try:
                if b"PRIVATE KEY" in m.group(1):
                    keys.append(serialization.load_pem_private_key(pem, None).public_key())
                elif b"PUBLIC KEY" in m.group(1):
                    keys.append(serialization.load_pem_public_key(pem))
            except ValueError:
                continue
    return keys


class Authenticator:
    def __init__(self, storage: Storage, sa_keys: list[Any], issuers: list[str],
                 audiences: list[str] | None = None):
        self.storage = storage
        self.sa_keys = sa_keys
        self.issuers = issuers or ["https://kubernetes.default.svc.cluster.local"]
        # a token minted for another audience (`kubectl create token --audience=vault`) is for
        # that service, never a credential for this API server
        self.audiences = audiences or self.issuers[:1]

    async def authenticate(self, peercert: dict | None, authorization: str | None) -> User | None:
        if authorization and authorization.lower().startswith("bearer "):
            return await self._token(authorization[7:].strip())
        return user_from_peercert(peercert)

    async def _token(self, token: str, audiences: list[str] | None = None) -> User | None:
        """The user a bearer token stands for, when it is valid for one of `audiences` (default:
        this server's API audiences), as TokenReview asks it too."""
        wanted = audiences or self.audiences
        if BOOTSTRAP_TOKEN.fullmatch(token):
            # audience-agnostic: valid for whichever of the API audiences were asked for
            accepted = [a for a in wanted if a in self.audiences]
            user = await self._bootstrap(token[:6], token[7:]) if accepted else None
        else:
            user = await self._service_account(token, wanted)
            accepted = user.audiences if user else []
        if user is not None:
            user.audiences = accepted
        return user

    async def review(self, token: str, audiences: list[str] | None) -> User | None:
        return await self._token(token, audiences)

    async def _service_account(self, token: str, audiences: list[str]) -> User | None:
        for key in self.sa_keys:
            try:
                claims = jwt.decode(token, key, algorithms=["RS256", "ES256", "ES384", "ES512", "PS256"],
                                    options={"verify_aud": False}, leeway=30)
            except jwt.PyJWTError:
                continue
            if claims.get("iss") == LEGACY_ISSUER:
                ns = claims.get("kubernetes.io/serviceaccount/namespace", "")
                name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
            elif claims.get("iss") in self.issuers:
                aud = claims.get("aud")
                accepted = [a for a in (aud if isinstance(aud, list) else [aud])
                            if isinstance(a, str) and a in audiences]
                if not accepted:
                    return None
                info = claims.get("kubernetes.io") or {}
                ns = info.get("namespace", "")
                name = (info.get("serviceaccount") or {}).get("name", "")
            else:
                continue
            sa = await self.storage.get("serviceaccounts", ns, name) if ns and name else None
            if sa is None:
                return None  # the service account was deleted: its tokens die with it
            uid = ((claims.get("kubernetes.io") or {}).get("serviceaccount") or {}).get("uid")
            if uid and uid != sa["metadata"].get("uid"):
                return None
            from .tokenrequest import binding_alive
            if not await binding_alive(self.storage, ns, claims.get("kubernetes.io") or {}):
                return None  # bound to a pod (or secret, node) that is gone: the token died with it
            extra = {}
            info = claims.get("kubernetes.io") or {}
            for key, claim in (("pod", "pod"), ("node", "node")):
                ref = info.get(claim) if isinstance(info.get(claim), dict) else {}
                if ref.get("name"):
                    extra[f"authentication.kubernetes.io/{key}-name"] = [ref["name"]]
                if ref.get("uid"):
                    extra[f"authentication.kubernetes.io/{key}-uid"] = [ref["uid"]]
            if claims.get("jti"):
                extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
            return User(f"system:serviceaccount:{ns}:{name}",
                        ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
                        extra, uid=sa["metadata"].get("uid", ""),
                        audiences=[a for a in audiences if a in self.audiences]
                        if claims.get("iss") == LEGACY_ISSUER else accepted)
        return None

    async def _bootstrap(self, token_id: str, secret: str) -> User | None:
        obj = await self.storage.get("secrets", "kube-system", f"bootstrap-token-{token_id}")
        if not obj or obj.get("type") != "bootstrap.kubernetes.io/token":
            return None
        try:
            data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        except (ValueError, UnicodeDecodeError):
            return None
        # constant-time: the secret must not be guessable from response timing
        if data.get("token-id") != token_id or \
                not hmac.compare_digest(data.get("token-secret", "").encode(), secret.encode()):
            return None
        if data.get("usage-bootstrap-authentication") != "true":
            return None
        exp = data.get("expiration")
        if exp:
            try:
                when = dt.datetime.fromisoformat(exp.replace("Z", "+00:00"))
            except ValueError:
                return None
            if when.tzinfo is None or when <= dt.datetime.now(dt.timezone.utc):
                return None  # expired (or not RFC 3339 with a zone, which Kubernetes rejects too)
        extra = [g.strip() for g in data.get("auth-extra-groups", "").split(",") if g.strip()]
        if not all(BOOTSTRAP_GROUP.fullmatch(g) for g in extra):
            return None  # e.g. system:masters: a token may only add bootstrapper groups
        return User(f"system:bootstrap:{token_id}", ["system:bootstrappers"] + extra + ["system:authenticated"])


@lru_cache(maxsize=4)
def _signing_key(key_pem: bytes) -> tuple[Any, str]:
    """The parsed signing key and its JWS algorithm, by PEM content.

    Parsing checks an RSA key's consistency, which costs more than the signature itself; every pod
    start asks for a token, so the parsed key is kept (a rewritten key file is new content and is
    parsed again).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(key_pem, None)
    return key, "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


def sign_service_account_token(key_pem: bytes, issuer: str, namespace: str, name: str, uid: str,
                               audiences: list[str], seconds: int, bound: dict | None = None) -> tuple[str, int]:
    """A bound service-account token, as the TokenRequest API issues it."""
    key, alg = _signing_key(key_pem)
    now = int(time.time())
    claims = {"iss": issuer, "sub": f"system:serviceaccount:{namespace}:{name}", "aud": audiences,
              "iat": now, "nbf": now, "exp": now + seconds,
              "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid},
                                **(bound or {})}}
    return jwt.encode(claims, key, algorithm=alg), now + seconds
