"""Kubeconfig loading for components: which server, which CA, which client identity.

Components (scheduler, controllers, kubelet, proxy, dns) read the kubeconfig the provisioner
wrote for them and build one SSL context from it; inline `*-data` fields and file paths both work.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass

import yaml


@dataclass
class KubeConfig:
    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    namespace: str = "default"
    ca_pem: bytes | None = None  # the cluster CA, for components that verify clients with it


def _material(entry: dict, key: str, base_dir: str) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = entry[key] if os.path.isabs(entry[key]) else os.path.join(base_dir, entry[key])
        with open(path, "rb") as fh:
            return fh.read()
    return None


def _named(items: list[dict], name: str, what: str) -> dict:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise ValueError(f"kubeconfig has no {what} named {name!r}")


def load(path: str, context: str | None = None) -> KubeConfig:
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    base = os.path.dirname(os.path.abspath(path))
    ctx = _named(doc.get("contexts"), context or doc.get("current-context", ""), "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users"), ctx.get("user", ""), "user")
    sslctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca = _material(cluster, "certificate-authority", base)
    if ca:
        sslctx.load_verify_locations(cadata=ca.decode())
    cert, key = _material(user, "client-certificate", base), _material(user, "client-key", base)
    if cert and key:
        # ssl only loads client certificates from files: write them to a private temp dir
        with tempfile.TemporaryDirectory() as tmp:
            cp, kp = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
            for p, data in ((cp, cert), (kp, key)):
                with open(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
                    fh.write(data)
            sslctx.load_cert_chain(cp, kp)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"]) as fh:
            token = fh.read().strip()
    return KubeConfig(cluster["server"].rstrip("/"), sslctx, token, ctx.get("namespace") or "default", ca)
