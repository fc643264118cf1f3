"""The bootstrapsigner and tokencleaner controllers (off under `*`; kubeadm turns them on).

bootstrapsigner: the `cluster-info` ConfigMap in kube-public carries, for every bootstrap token
allowed to sign (`usage-bootstrap-signing: "true"`, not expired), a detached JWS of its
`kubeconfig` entry under `jws-kubeconfig-<token id>`: HS256 keyed by the token secret, header
{"alg":"HS256","kid":"<token id>"}, payload left out (`header..signature`). A joining node that
knows the token checks the ConfigMap with it before trusting the CA inside. Signatures of
tokens that are gone are removed.

tokencleaner: bootstrap token Secrets past their `expiration` are deleted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
SIG_PREFIX = "jws-kubeconfig-"
CLUSTER_INFO = "kube-public/cluster-info"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def detached_jws(content: str, token_id: str, token_secret: str) -> str:
    header = b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    payload = b64url(content.encode())
    sig = hmac.new(token_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}..{b64url(sig)}"


def token_fields(secret: Obj) -> dict[str, str]:
    out = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v).decode()
        except ValueError:
            continue
    for k, v in (secret.get("stringData") or {}).items():
        out.setdefault(k, v)
    return out


def expired(fields: dict[str, str], now: dt.datetime) -> bool:
    when = podutil.parse_time(fields.get("expiration"))
    return when is not None and when <= now


def signing_tokens(secrets: list[Obj], now: dt.datetime) -> dict[str, str]:
    """token id -> secret, for valid bootstrap tokens allowed to sign."""
    out = {}
    for s in secrets:
        if s.get("type") != TOKEN_TYPE:
            continue
        f = token_fields(s)
        if f.get("usage-bootstrap-signing") == "true" and f.get("token-id") and f.get("token-secret") \
                and not expired(f, now) and s["metadata"]["name"] == f"bootstrap-token-{f['token-id']}":
            out[f["token-id"]] = f["token-secret"]
    return out


def signed_data(data: dict[str, str], tokens: dict[str, str]) -> dict[str, str]:
    """cluster-info's data with exactly one signature per signing token."""
    out = {k: v for k, v in data.items() if not k.startswith(SIG_PREFIX)}
    kubeconfig = data.get("kubeconfig")
    if kubeconfig is not None:
        for tid, secret in tokens.items():
            out[SIG_PREFIX + tid] = detached_jws(kubeconfig, tid, secret)
    return out


class BootstrapSigner(Controller):
    name = "bootstrapsigner"

    def setup(self) -> None:
        self.configmaps = self.ctx.informer("", "v1", "configmaps")
        self.secrets = self.ctx.informer("", "v1", "secrets")
        self.configmaps.add_handler(self._cm, lambda _o, n: self._cm(n))
        self.secrets.add_handler(self._secret, lambda _o, n: self._secret(n), self._secret)

    def _cm(self, cm: Obj) -> None:
        if f"{cm['metadata'].get('namespace')}/{cm['metadata']['name']}" == CLUSTER_INFO:
            self.queue.add(CLUSTER_INFO)

    def _secret(self, s: Obj) -> None:
        if s.get("type") == TOKEN_TYPE and s["metadata"].get("namespace") == "kube-system":
            self.queue.add(CLUSTER_INFO)

    async def sync(self, key: str) -> None:
        cm = self.configmaps.get(key)
        if cm is None:
            return
        now = podutil.utcnow()
        secrets = self.secrets.by_index("namespace", "kube-system")
        data = cm.get("data") or {}
        want = signed_data(data, signing_tokens(secrets, now))
        if want == data:
            return
        ns, _ = split_key(key)
        try:
            await self.api.replace("", "v1", "configmaps", dict(cm, data=want), ns)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise


class TokenCleaner(Controller):
    name = "tokencleaner"

    def setup(self) -> None:
        self.secrets = self.ctx.informer("", "v1", "secrets")
        self.secrets.add_handler(self._secret, lambda _o, n: self._secret(n))

    def _secret(self, s: Obj) -> None:
        if s.get("type") == TOKEN_TYPE and s["metadata"].get("namespace") == "kube-system":
            self.enqueue(s)

    async def sync(self, key: str) -> None:
        s = self.secrets.get(key)
        if s is None:
            return
        fields = token_fields(s)
        when = podutil.parse_time(fields.get("expiration"))
        if when is None:
            return
        now = podutil.utcnow()
        if when > now:
            self.queue.add_after(key, (when - now).total_seconds() + 0.5)
            return
        ns, name = split_key(key)
        try:
            await self.api.delete("", "v1", "secrets", name, ns, uid=s["metadata"]["uid"])
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
