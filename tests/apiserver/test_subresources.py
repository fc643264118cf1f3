"""Subresources and the kubectl commands built on them: drain (pods/eviction), certificate
approve (CSR approval + status), Job selectors, and the wide table columns; real kubectl output."""

from __future__ import annotations

import base64
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .test_kubectl import lines


def _node(kubectl, name: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))


def test_drain_cordons_and_evicts_through_pods_eviction(kubectl, raw, ns):
    node = f"drain-{ns[-4:]}"
    _node(kubectl, node)
    kubectl("run", "victim", "-n", ns, "--image=busybox")
    status, _, _ = raw("POST", f"/api/v1/namespaces/{ns}/pods/victim/binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "victim"},
        "target": {"kind": "Node", "name": node}})
    assert status == 201
    out = kubectl("drain", node, "--force", "--grace-period=0", "--timeout=30s")
    text = out.stdout + out.stderr
    assert f"node/{node} cordoned" in text
    assert f"evicting pod {ns}/victim" in text and "pod/victim evicted" in text
    assert f"node/{node} drained" in text
    gone = kubectl("get", "pod", "victim", "-n", ns, check=False)
    assert 'pods "victim" not found' in gone.stderr
    rows = lines(kubectl("get", "node", node).stdout)
    assert "SchedulingDisabled" in rows[1][1]
    kubectl("delete", "node", node)


def test_eviction_is_discovered_with_its_group(kubectl):
    resources = json.loads(kubectl("get", "--raw", "/api/v1").stdout)["resources"]
    eviction = next(r for r in resources if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"]) == ("policy", "v1", "Eviction")


def _csr_pem(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def test_certificate_approve_records_requestor_and_conditions(kubectl, cluster, ns):
    name = f"csr-{ns[-4:]}"
    manifest = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": name},
                "spec": {"request": _csr_pem("someone"), "signerName": "kubernetes.io/kube-apiserver-client",
                         "expirationSeconds": 86400, "usages": ["client auth"],
                         "username": "forged", "groups": ["system:masters"]}}
    kubectl("create", "-f", "-", input=json.dumps(manifest))
    rows = lines(kubectl("get", "csr", name).stdout)
    assert rows[0] == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert rows[1][2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "24h", "Pending"]
    spec = kubectl.json("get", "csr", name)["spec"]
    assert spec["username"] == "kubernetes-admin" and "system:masters" in spec["groups"]

    out = kubectl("certificate", "approve", name).stdout  # PUT .../approval, sent as protobuf
    assert out.strip() == f"certificatesigningrequest.certificates.k8s.io/{name} approved"
    cond = kubectl.json("get", "csr", name)["status"]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in cond] == [("Approved", "True", "KubectlApprove")]

    cert = base64.b64encode((cluster.pki / "admin.crt").read_bytes()).decode()
    kubectl("patch", "csr", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"certificate": cert}}))
    assert lines(kubectl("get", "csr", name).stdout)[1][-1] == "Approved,Issued"
    # spec is immutable: an update keeps the stored request and requestor
    kubectl("patch", "csr", name, "--type=merge", "-p", json.dumps({"spec": {"username": "mallory"}}))
    assert kubectl.json("get", "csr", name)["spec"]["username"] == "kubernetes-admin"
    kubectl("delete", "csr", name)


def test_job_gets_a_generated_selector(kubectl, ns):
    kubectl("create", "job", "once", "-n", ns, "--image=busybox")
    job = kubectl.json("get", "job", "once", "-n", ns)
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "once" and labels["controller-uid"] == uid
    rows = lines(kubectl("get", "job", "once", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[1][-1] == f"batch.kubernetes.io/controller-uid={uid}"


def test_wide_columns_of_bindings_and_service_accounts(kubectl, ns):
    kubectl("create", "role", "reader", "-n", ns, "--verb=get", "--resource=pods")
    kubectl("create", "rolebinding", "readers", "-n", ns, "--role=reader", "--user=bob",
            "--group=devs", f"--serviceaccount={ns}:robot")
    rows = lines(kubectl("get", "rolebinding", "readers", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[1][:2] == ["readers", "Role/reader"] and rows[1][3:] == ["bob", "devs", f"{ns}/robot"]
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    assert lines(kubectl("get", "sa", "robot", "-n", ns).stdout)[0] == ["NAME", "SECRETS", "AGE"]


def test_single_health_checks(raw):
    assert raw("GET", "/readyz/etcd", cert=None)[::2] == (200, b"ok")
    assert raw("GET", "/livez/ping", cert=None)[::2] == (200, b"ok")
    assert raw("GET", "/readyz/nonsense", cert=None)[0] == 404
