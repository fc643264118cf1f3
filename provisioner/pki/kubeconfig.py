"""Kubeconfig files: a cluster, a user with a client certificate or token, one context."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from provisioner.pki.certs import CertKeyPair, write_private_file


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_kubeconfig(
    *,
    cluster_name: str,
    server: str,
    ca_pem: bytes,
    user: str,
    client: CertKeyPair | None = None,
    token: str | None = None,
) -> str:
    credentials: dict[str, str] = {}
    if client is not None:
        credentials["client-certificate-data"] = _b64(client.cert_pem())
        credentials["client-key-data"] = _b64(client.key_pem())
    if token is not None:
        credentials["token"] = token
    context = f"{user}@{cluster_name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(path: Path, content: str) -> None:
    """Kubeconfigs hold private keys: written 0600, atomically."""
    write_private_file(path, content.encode())
