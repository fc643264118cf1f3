"""kubelet: TLS bootstrap and client certificate rotation.

With --bootstrap-kubeconfig (a bootstrap token) and no --kubeconfig file yet, the kubelet makes
a key, files a CertificateSigningRequest (signer kubernetes.io/kube-apiserver-client-kubelet,
CN system:node:<name>, O system:nodes), waits until it is approved and signed, stores key and
certificate in <cert-dir>/kubelet-client-<time>.pem with kubelet-client-current.pem pointing
at it, and writes the kubeconfig naming that file. No CA key is ever needed on the node.
Rotation files the same request with the current identity when 70% of the certificate's life
has passed, and loads the new pair into the client's SSL context (new connections use it).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import os
import ssl

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..api import kubeconfig as kubeconfig_loader
from ..api.client import ApiStatusError, Client
from .config import ConfigError

log = logging.getLogger("kubelet.bootstrap")
SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CURRENT = "kubelet-client-current.pem"
WAIT_SECONDS = 3600


def new_request(node_name: str, sans: list[x509.GeneralName] | None = None
                ) -> tuple[bytes, bytes]:
    """(key PEM, CSR PEM) for system:node:<name> in system:nodes (with `sans`: a serving
    certificate's subject alternative names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([
                   x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                   x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


async def request_certificate(client: Client, node_name: str, timeout: float = WAIT_SECONDS,
                              *, signer: str = SIGNER,
                              usages: tuple[str, ...] = ("digital signature", "client auth"),
                              sans: list[x509.GeneralName] | None = None,
                              generate_name: str = "node-csr-") -> tuple[bytes, bytes]:
    """File the CSR and wait for its certificate: (key PEM, certificate PEM)."""
    key_pem, csr_pem = new_request(node_name, sans)
    csr = await client.create("certificates.k8s.io", "v1", "certificatesigningrequests", {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": generate_name},
        "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": signer,
                 "usages": list(usages)}})
    name = csr["metadata"]["name"]
    log.info("filed certificate signing request %s for system:node:%s; waiting for approval",
             name, node_name)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        current = await client.get("certificates.k8s.io", "v1", "certificatesigningrequests",
                                   name)
        status = current.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") in ("Denied", "Failed") and condition.get("status") != "False":
                raise ConfigError(f"certificate signing request {name} was "
                                  f"{condition['type'].lower()}: {condition.get('message', '')}")
        if status.get("certificate"):
            log.info("certificate signing request %s signed", name)
            return key_pem, base64.b64decode(status["certificate"])
        await asyncio.sleep(1)
    raise ConfigError(f"certificate signing request {name} was not signed within {timeout:.0f}s "
                      "(is the controller manager approving and signing kubelet CSRs?)")


def store_pair(cert_dir: str, key_pem: bytes, cert_pem: bytes, kind: str = "client") -> str:
    """Write the pair 0600 as kubelet-<kind>-<time>.pem and point kubelet-<kind>-current.pem
    at it (kind: client or server, as kubelet names them); the current path."""
    os.makedirs(cert_dir, mode=0o700, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
    path = os.path.join(cert_dir, f"kubelet-{kind}-{stamp}.pem")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(cert_pem + key_pem)
    current = os.path.join(cert_dir, f"kubelet-{kind}-current.pem")
    tmp = current + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.basename(path), tmp)
    os.replace(tmp, current)
    return current


def write_kubeconfig(path: str, bootstrap_doc: dict, current_pem: str) -> None:
    context = next(c["context"] for c in bootstrap_doc["contexts"]
                   if c["name"] == bootstrap_doc["current-context"])
    cluster = next(c["cluster"] for c in bootstrap_doc["clusters"]
                   if c["name"] == context["cluster"])
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "default-context",
           "clusters": [{"name": "default-cluster", "cluster": cluster}],
           "contexts": [{"name": "default-context",
                         "context": {"cluster": "default-cluster", "user": "default-auth"}}],
           "users": [{"name": "default-auth", "user": {"client-certificate": current_pem,
                                                       "client-key": current_pem}}]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        yaml.safe_dump(doc, out)


async def bootstrap_client_certificate(bootstrap_path: str, kubeconfig_path: str, node_name: str,
                                       cert_dir: str) -> None:
    try:
        with open(bootstrap_path) as source:
            bootstrap_doc = yaml.safe_load(source)
        config = kubeconfig_loader.load(bootstrap_path)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
        raise ConfigError(f"--bootstrap-kubeconfig {bootstrap_path}: {error}") from None
    async with Client(config, user_agent="kubelet") as client:
        try:
            key_pem, cert_pem = await request_certificate(client, node_name)
        except ApiStatusError as error:
            raise ConfigError(f"TLS bootstrap with {bootstrap_path} failed: {error}") from None
    current = store_pair(cert_dir, key_pem, cert_pem)
    write_kubeconfig(kubeconfig_path, bootstrap_doc, current)
    log.info("wrote %s with the client certificate %s", kubeconfig_path, current)


def lifetime(pem: bytes) -> tuple[dt.datetime, dt.datetime]:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.not_valid_before_utc, cert.not_valid_after_utc


async def rotation_loop(client: Client, node_name: str, cert_dir: str,
                        ssl_context: ssl.SSLContext) -> None:
    """Renew the client certificate at 70% of its life (kubelet picks 70-90%)."""
    current = os.path.join(cert_dir, CURRENT)
    while True:
        try:
            with open(current, "rb") as source:
                start, end = lifetime(source.read())
        except OSError:
            return                    # not a bootstrapped kubelet: nothing to rotate
        renew_at = start + (end - start) * 0.7
        wait = (renew_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
        if wait > 0:
            await asyncio.sleep(min(wait, 3600))
            continue
        try:
            key_pem, cert_pem = await request_certificate(client, node_name)
            path = store_pair(cert_dir, key_pem, cert_pem)
            ssl_context.load_cert_chain(path)
            log.info("rotated the client certificate (%s)", path)
        except (ApiStatusError, ConfigError, OSError) as error:
            log.warning("client certificate rotation failed (retry in 60s): %s", error)
            await asyncio.sleep(60)
