"""Kubelet TLS bootstrap through the controllers: a bootstrap identity's node client CSR is
approved after a SubjectAccessReview and signed with the cluster CA; other signers are signed
once a person approves; bootstrap tokens sign cluster-info and are cleaned up when expired."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.apiserver.conftest import Kubectl

from .conftest import eventually

NODECLIENT_ROLE = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"


def csr_pem(cn: str, orgs: tuple[str, ...] = (), dns: tuple[str, ...] = ()) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)
                                                             for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return base64.b64encode(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)).decode()


def csr(name: str, request: str, signer: str, usages: list[str]) -> str:
    return json.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                       "metadata": {"name": name},
                       "spec": {"request": request, "signerName": signer, "usages": usages}})


def issued(kubectl, name: str) -> x509.Certificate | None:
    status = kubectl.json("get", "csr", name).get("status") or {}
    if not status.get("certificate"):
        return None
    return x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))


def test_bootstrap_node_client_certificate_is_approved_and_signed(kubectl, cluster, kcm, tmp_path_factory):
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": NODECLIENT_ROLE},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/nodeclient"],
                   "verbs": ["create"]}]}))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "test-node-autoapprove-bootstrap"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODECLIENT_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:bootstrappers"}]}))
    tid = os.urandom(3).hex()
    bootstrap = Kubectl(cluster, tmp_path_factory.mktemp("bootstrap-home"),
                        cluster.user_kubeconfig(f"system:bootstrap:{tid}", ("system:bootstrappers",)))
    name = f"node-csr-{tid}"
    bootstrap("create", "-f", "-", input=csr(name, csr_pem(f"system:node:worker-{tid}", ("system:nodes",)),
                                            "kubernetes.io/kube-apiserver-client-kubelet",
                                            ["digital signature", "client auth"]))
    cert = eventually(lambda: issued(kubectl, name), what="an issued certificate")
    approved = next(c for c in kubectl.json("get", "csr", name)["status"]["conditions"] if c["type"] == "Approved")
    assert approved["reason"] == "AutoApproved"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:worker-{tid}"
    ca = x509.load_pem_x509_certificate((cluster.pki / "ca.crt").read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


def test_other_requests_wait_for_a_person_then_are_signed_or_failed(kubectl, kcm):
    tag = os.urandom(3).hex()
    kubectl("create", "-f", "-", input=csr(f"alice-{tag}", csr_pem("alice", ("devs",)),
                                          "kubernetes.io/kube-apiserver-client", ["client auth"]))
    kubectl("create", "-f", "-", input=csr(f"serving-{tag}", csr_pem("system:node:n1", ("system:nodes",), ("n1",)),
                                          "kubernetes.io/kubelet-serving", ["digital signature", "server auth"]))
    kubectl("create", "-f", "-", input=csr(f"bad-{tag}", csr_pem("mallory"),
                                          "kubernetes.io/kube-apiserver-client", ["server auth"]))
    assert issued(kubectl, f"alice-{tag}") is None  # nobody approved it
    for n in ("alice", "serving", "bad"):
        kubectl("certificate", "approve", f"{n}-{tag}")
    assert eventually(lambda: issued(kubectl, f"alice-{tag}"), what="alice's certificate")
    serving = eventually(lambda: issued(kubectl, f"serving-{tag}"), what="the serving certificate")
    assert serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["n1"]

    def failed():
        conds = kubectl.json("get", "csr", f"bad-{tag}")["status"].get("conditions", [])
        return next((c for c in conds if c["type"] == "Failed"), None)
    assert eventually(failed, what="Failed condition")["reason"] == "SignerValidationFailure"


def token_secret(tid: str, secret: str, expiration: str | None = None) -> str:
    data = {"token-id": tid, "token-secret": secret, "usage-bootstrap-signing": "true",
            "usage-bootstrap-authentication": "true"}
    if expiration:
        data["expiration"] = expiration
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                       "metadata": {"name": f"bootstrap-token-{tid}", "namespace": "kube-system"},
                       "stringData": data})


def test_cluster_info_is_signed_per_token_and_expired_tokens_go(kubectl, kcm):
    kubectl("create", "namespace", "kube-public", check=False)
    kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\n"
    kubectl("apply", "-n", "kube-public", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info"},
        "data": {"kubeconfig": kubeconfig}}))
    tid, secret = os.urandom(3).hex(), os.urandom(8).hex()
    kubectl("apply", "-f", "-", input=token_secret(tid, secret))

    def signature():
        return kubectl.json("get", "cm", "cluster-info", "-n", "kube-public")["data"].get(f"jws-kubeconfig-{tid}")
    jws = eventually(signature, what="a signature for the token")
    header, payload, sig = jws.split(".")
    assert payload == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "kid": tid}
    body = base64.urlsafe_b64encode(kubeconfig.encode()).rstrip(b"=").decode()
    want = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "==") == want

    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl("apply", "-f", "-", input=token_secret(tid, secret, soon))
    eventually(lambda: kubectl("get", "secret", f"bootstrap-token-{tid}", "-n", "kube-system",
                               check=False).returncode != 0, what="expired token deleted")
    eventually(lambda: signature() is None, what="its signature removed")
