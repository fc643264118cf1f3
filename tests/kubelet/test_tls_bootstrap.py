"""TLS bootstrap: a kubelet with only a bootstrap token files a CSR for system:node:<name>,
and once it is approved and signed (here by the test, as the controller manager would) writes
its kubeconfig and registers its Node. No CA key is on the node."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kubernetes import client as k8s

from .conftest import KubeletProcess, node_ready, wait_for


def sign(cluster, request_pem: bytes) -> bytes:
    """What csrsigning does: the CSR's subject and key, signed by the cluster CA."""
    csr = x509.load_pem_x509_csr(request_pem)
    ca = x509.load_pem_x509_certificate((cluster.pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((cluster.pki / "ca.key").read_bytes(), None)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_tls_bootstrap_gets_a_client_certificate_and_registers(api, cluster, runtime):
    token_id, token_secret = secrets.token_hex(3), secrets.token_hex(8)
    api.create_namespaced_secret("kube-system", k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=f"bootstrap-token-{token_id}"),
        type="bootstrap.kubernetes.io/token",
        string_data={"token-id": token_id, "token-secret": token_secret,
                     "usage-bootstrap-authentication": "true"}))
    base = runtime.base / "bootstrap"
    base.mkdir()
    bootstrap = base / "bootstrap-kubelet.conf"
    ca = base64.b64encode((cluster.pki / "ca.crt").read_bytes()).decode()
    bootstrap.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: tls-bootstrap\n"
        f"clusters:\n- name: dev\n  cluster:\n    server: {cluster.server}\n"
        f"    certificate-authority-data: {ca}\n"
        "contexts:\n- name: tls-bootstrap\n  context:\n    cluster: dev\n    user: bootstrap\n"
        f"users:\n- name: bootstrap\n  user:\n    token: {token_id}.{token_secret}\n")
    node = "bootstrapped-node"
    kubelet = KubeletProcess(base, runtime, cluster, node=node, bootstrap=bootstrap)
    kubelet.start()
    certificates = k8s.CertificatesV1Api(api.api_client)
    try:
        csr = wait_for(lambda: [c for c in certificates.list_certificate_signing_request().items
                                if c.spec.username == f"system:bootstrap:{token_id}"], 60,
                       what=f"the kubelet's CSR ({kubelet.log})")[0]
        assert csr.spec.signer_name == "kubernetes.io/kube-apiserver-client-kubelet"
        request = x509.load_pem_x509_csr(base64.b64decode(csr.spec.request))
        assert request.subject.rfc4514_string() == f"CN=system:node:{node},O=system:nodes"
        assert not os.path.exists(kubelet.kubeconfig)

        csr.status = k8s.V1CertificateSigningRequestStatus(conditions=[
            k8s.V1CertificateSigningRequestCondition(
                type="Approved", status="True", reason="AutoApproved",
                message="approved by the test, as csrapproving would")])
        csr = certificates.replace_certificate_signing_request_approval(csr.metadata.name, csr)
        csr.status.certificate = base64.b64encode(
            sign(cluster, base64.b64decode(csr.spec.request))).decode()
        certificates.replace_certificate_signing_request_status(csr.metadata.name, csr)

        wait_for(lambda: node_ready(api, node), 60, what=f"node {node} Ready ({kubelet.log})")
        assert stat.S_IMODE(os.stat(kubelet.kubeconfig).st_mode) == 0o600
        current = base / "pki" / "kubelet-client-current.pem"
        assert stat.S_IMODE(os.stat(current).st_mode) == 0o600
        assert b"PRIVATE KEY" in current.read_bytes()
    finally:
        kubelet.stop()
        api.delete_node(node)
