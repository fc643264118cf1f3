"""The csrapproving controller: kubelet client certificates are approved when the requester may
have them, as upstream decides it.

A CertificateSigningRequest for `kubernetes.io/kube-apiserver-client-kubelet` that looks like a
node client certificate (CN `system:node:<name>`, O exactly `system:nodes`, no SANs, client-auth
usages) is approved when a SubjectAccessReview says its requester may create
`certificatesigningrequests/selfnodeclient` (a node renewing its own certificate) or
`certificatesigningrequests/nodeclient` (a bootstrap token asking for a new node). Anything else
is left for a person (`kubectl certificate approve`), kubelet serving certificates included.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller

Obj = dict[str, Any]
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_USAGES = ({"key encipherment", "digital signature", "client auth"}, {"digital signature", "client auth"})


def parse_request(csr: Obj) -> x509.CertificateSigningRequest | None:
    try:
        return x509.load_pem_x509_csr(base64.b64decode((csr.get("spec") or {}).get("request", "")))
    except ValueError:
        return None


def subject(req: x509.CertificateSigningRequest) -> tuple[str, list[str]]:
    cn = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (str(cn[0]) if cn else ""), [str(o) for o in orgs]


def has_sans(req: x509.CertificateSigningRequest) -> bool:
    try:
        return bool(len(req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value))
    except x509.ExtensionNotFound:
        return False


def is_node_client(csr: Obj, req: x509.CertificateSigningRequest) -> bool:
    cn, orgs = subject(req)
    usages = set((csr.get("spec") or {}).get("usages") or [])
    return cn.startswith("system:node:") and orgs == ["system:nodes"] and not has_sans(req) \
        and usages in CLIENT_USAGES


def decided(csr: Obj) -> bool:
    return any(c.get("type") in ("Approved", "Denied") for c in (csr.get("status") or {}).get("conditions") or [])


def review(csr: Obj, subresource: str) -> Obj:
    spec = csr.get("spec") or {}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": spec.get("username", ""), "groups": spec.get("groups") or [],
                     "uid": spec.get("uid", ""), "extra": spec.get("extra") or {},
                     "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                            "verb": "create", "subresource": subresource}}}


class CSRApprovingController(Controller):
    name = "csrapproving"
    requires = (("certificates.k8s.io", "v1", "certificatesigningrequests"),)

    def setup(self) -> None:
        self.csrs = self.ctx.informer("certificates.k8s.io", "v1", "certificatesigningrequests")
        self.csrs.add_handler(self.enqueue, lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or decided(csr) or (csr.get("spec") or {}).get("signerName") != KUBELET_CLIENT:
            return
        req = parse_request(csr)
        if req is None or not is_node_client(csr, req):
            return
        cn, _ = subject(req)
        checks = [("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.")]
        if (csr.get("spec") or {}).get("username") == cn:
            checks.insert(0, ("selfnodeclient",
                              "Auto approving self kubelet client certificate after SubjectAccessReview."))
        for subresource, message in checks:
            result = await self.api.create("authorization.k8s.io", "v1", "subjectaccessreviews",
                                           review(csr, subresource))
            if (result.get("status") or {}).get("allowed"):
                await self._approve(csr, message)
                return

    async def _approve(self, csr: Obj, message: str) -> None:
        now = podutil.rfc3339(podutil.utcnow())
        body = dict(csr, status=dict(csr.get("status") or {}))
        body["status"]["conditions"] = list(body["status"].get("conditions") or []) + [
            {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
             "lastUpdateTime": now, "lastTransitionTime": now}]
        try:
            await self.api.replace("certificates.k8s.io", "v1", "certificatesigningrequests", body, sub="approval")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
