"""The csrsigning controller: approved requests for the built-in signers get certificates signed
with the cluster signing key (--cluster-signing-cert-file/--cluster-signing-key-file).

Signers and what each accepts, as upstream:
- kubernetes.io/kube-apiserver-client-kubelet: node client certificates (CN system:node:*, O
  system:nodes, no SANs, client usages);
- kubernetes.io/kubelet-serving: CN system:node:*, O system:nodes, DNS/IP SANs only, server usages;
- kubernetes.io/kube-apiserver-client: any subject, client auth required, no server auth.
A request that breaks its signer's rules gets a Failed condition (SignerValidationFailure). The
lifetime is spec.expirationSeconds (at least 10 minutes) or one year, never past the CA's own.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller
from .csrapproving import has_sans, is_node_client, parse_request, subject

Obj = dict[str, Any]
DEFAULT_DURATION = dt.timedelta(days=365)
MIN_DURATION = dt.timedelta(minutes=10)
EXTENDED = {"client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
            "code signing": ExtendedKeyUsageOID.CODE_SIGNING, "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION}
KEY_USAGE_FLAGS = {"digital signature": "digital_signature", "key encipherment": "key_encipherment",
                   "content commitment": "content_commitment", "data encipherment": "data_encipherment",
                   "key agreement": "key_agreement", "cert sign": "key_cert_sign", "crl sign": "crl_sign"}
SERVING_USAGES = ({"key encipherment", "digital signature", "server auth"}, {"digital signature", "server auth"})


def _serving_ok(csr: Obj, req: x509.CertificateSigningRequest) -> str | None:
    cn, orgs = subject(req)
    if not cn.startswith("system:node:") or orgs != ["system:nodes"]:
        return "subject must be CN=system:node:<name>, O=system:nodes"
    try:
        sans = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = []
    if any(not isinstance(n, (x509.DNSName, x509.IPAddress)) for n in sans) or not len(sans):
        return "only DNS and IP subject alternative names are allowed, and at least one is required"
    if set((csr.get("spec") or {}).get("usages") or []) not in SERVING_USAGES:
        return "usages must be digital signature and server auth (key encipherment allowed)"
    return None


def _client_ok(csr: Obj, req: x509.CertificateSigningRequest) -> str | None:
    usages = set((csr.get("spec") or {}).get("usages") or [])
    if "client auth" not in usages or "server auth" in usages:
        return "usages must include client auth and not server auth"
    return None


SIGNERS: dict[str, Callable[[Obj, x509.CertificateSigningRequest], str | None]] = {
    "kubernetes.io/kube-apiserver-client-kubelet":
        lambda csr, req: None if is_node_client(csr, req) else
        "not a node client certificate request (CN system:node:<name>, O system:nodes, no SANs, client usages)",
    "kubernetes.io/kubelet-serving": _serving_ok,
    "kubernetes.io/kube-apiserver-client": _client_ok,
}


def condition(csr: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])


def sign(req: x509.CertificateSigningRequest, usages: list[str], ca_cert: x509.Certificate, ca_key: Any,
         seconds: int | None, now: dt.datetime) -> bytes:
    """The PEM certificate for a request: its subject and SANs, the usages asked for."""
    duration = dt.timedelta(seconds=seconds) if seconds else DEFAULT_DURATION
    duration = max(duration, MIN_DURATION)
    not_after = min(now + duration, ca_cert.not_valid_after_utc)
    flags = {v: (k in usages) for k, v in KEY_USAGE_FLAGS.items()}
    builder = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(ca_cert.subject)
               .public_key(req.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(encipher_only=False, decipher_only=False, **flags), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    ext = [EXTENDED[u] for u in usages if u in EXTENDED]
    if ext:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ext), critical=False)
    if has_sans(req):
        sans = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class CSRSigningController(Controller):
    name = "csrsigning"
    requires = (("certificates.k8s.io", "v1", "certificatesigningrequests"),)

    def setup(self) -> None:
        opts = self.ctx.options
        self.ca_cert = self.ca_key = None
        if opts.cluster_signing_cert_file and opts.cluster_signing_key_file:
            with open(opts.cluster_signing_cert_file, "rb") as fh:
                self.ca_cert = x509.load_pem_x509_certificate(fh.read())
            with open(opts.cluster_signing_key_file, "rb") as fh:
                self.ca_key = serialization.load_pem_private_key(fh.read(), password=None)
        self.csrs = self.ctx.informer("certificates.k8s.io", "v1", "certificatesigningrequests")
        self.csrs.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or self.ca_key is None or (csr.get("status") or {}).get("certificate"):
            return
        spec = csr.get("spec") or {}
        check = SIGNERS.get(spec.get("signerName", ""))
        if check is None or not condition(csr, "Approved") or condition(csr, "Denied") or condition(csr, "Failed"):
            return
        req = parse_request(csr)
        problem = "the request is not a PEM CERTIFICATE REQUEST" if req is None else check(csr, req)
        status = dict(csr.get("status") or {})
        if problem:
            now = podutil.rfc3339(podutil.utcnow())
            status["conditions"] = list(status.get("conditions") or []) + [
                {"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": problem,
                 "lastUpdateTime": now, "lastTransitionTime": now}]
        else:
            pem = sign(req, spec.get("usages") or [], self.ca_cert, self.ca_key, spec.get("expirationSeconds"),
                       podutil.utcnow())
            status["certificate"] = base64.b64encode(pem).decode()
        try:
            await self.api.replace("certificates.k8s.io", "v1", "certificatesigningrequests",
                                   dict(csr, status=status), sub="status")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
