"""The serviceaccount-token controller: legacy token Secrets are filled in
(--service-account-private-key-file).

A Secret of type kubernetes.io/service-account-token annotated with
`kubernetes.io/service-account.name` gets `token` (a JWT signed with the service-account key,
issuer `kubernetes/serviceaccount`, the legacy claims), `ca.crt` (the root CA bundle) and
`namespace`, and the account's uid annotation. Secrets of an account that no longer exists, or
has another uid, are deleted. Without the key flag the controller does nothing, as upstream.
"""

from __future__ import annotations

import base64
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provisioner.components.api.client import ApiStatusError

from .base import Controller, split_key
from .rootca import kubeconfig_ca

Obj = dict[str, Any]
TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
ISSUER = "kubernetes/serviceaccount"


def legacy_claims(namespace: str, secret: str, account: str, uid: str) -> Obj:
    return {"iss": ISSUER, "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret,
            "kubernetes.io/serviceaccount/service-account.name": account,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "sub": f"system:serviceaccount:{namespace}:{account}"}


def algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    raise ValueError("the service account key must be RSA or ECDSA")


class ServiceAccountTokenController(Controller):
    name = "serviceaccount-token"

    def setup(self) -> None:
        opts = self.ctx.options
        self.key = None
        if opts.service_account_private_key_file:
            with open(opts.service_account_private_key_file, "rb") as fh:
                self.key = serialization.load_pem_private_key(fh.read(), password=None)
        if opts.root_ca_file:
            with open(opts.root_ca_file) as fh:
                self.bundle = fh.read()
        else:
            self.bundle = kubeconfig_ca(opts.kubeconfig)
        self.secrets = self.ctx.informer("", "v1", "secrets")
        self.accounts = self.ctx.informer("", "v1", "serviceaccounts")
        self.secrets.add_handler(self._secret, lambda _o, n: self._secret(n))
        self.accounts.add_handler(on_delete=self._account_gone)

    def _secret(self, s: Obj) -> None:
        if s.get("type") == TOKEN_TYPE:
            self.enqueue(s)

    def _account_gone(self, sa: Obj) -> None:
        for s in self.secrets.by_index("namespace", sa["metadata"]["namespace"]):
            if s.get("type") == TOKEN_TYPE and \
                    (s["metadata"].get("annotations") or {}).get(NAME_ANNOTATION) == sa["metadata"]["name"]:
                self.enqueue(s)

    async def sync(self, key: str) -> None:
        secret = self.secrets.get(key)
        if self.key is None or secret is None or secret.get("type") != TOKEN_TYPE:
            return
        ns, name = split_key(key)
        annotations = secret["metadata"].get("annotations") or {}
        account = self.accounts.get(f"{ns}/{annotations.get(NAME_ANNOTATION, '')}")
        if account is None:
            try:
                account = await self.api.get("", "v1", "serviceaccounts", annotations.get(NAME_ANNOTATION, ""), ns)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        uid = (account or {}).get("metadata", {}).get("uid")
        if account is None or (annotations.get(UID_ANNOTATION) and annotations[UID_ANNOTATION] != uid):
            try:
                await self.api.delete("", "v1", "secrets", name, ns, uid=secret["metadata"]["uid"])
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise
            return
        if (secret.get("data") or {}).get("token"):
            return
        token = jwt.encode(legacy_claims(ns or "", name, account["metadata"]["name"], uid), self.key,
                           algorithm=algorithm(self.key))
        data = dict(secret.get("data") or {})
        data.update({"token": base64.b64encode(token.encode()).decode(),
                     "namespace": base64.b64encode((ns or "").encode()).decode()})
        if self.bundle:
            data["ca.crt"] = base64.b64encode(self.bundle.encode()).decode()
        body = dict(secret, data=data)
        body["metadata"] = dict(secret["metadata"], annotations=dict(annotations, **{UID_ANNOTATION: uid}))
        try:
            await self.api.replace("", "v1", "secrets", body, ns)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
