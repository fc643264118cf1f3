"""Admission webhooks over real HTTPS (a webhook server in this process, its CA as caBundle),
through real kubectl: a mutating webhook patching objects, a validating one denying with its
message, failurePolicy Fail/Ignore for an unreachable or too slow webhook, namespace and object
selectors, and reinvocation of an IfNeeded webhook after a later one changed the object."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import eventually


def _pki(tmp, dns_names=()):
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] +
                                                       [x509.DNSName(n) for n in dns_names]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    (tmp / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return base64.b64encode(ca.public_bytes(serialization.Encoding.PEM)).decode()


class Handler(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        Handler.calls.append((self.path, req))
        response = {"uid": req["uid"], "allowed": True}
        obj = req.get("object") or {}
        if self.path == "/mutate":
            labels = dict((obj.get("metadata") or {}).get("labels") or {}, mutated="yes",
                          seen=str(len((obj.get("metadata") or {}).get("labels") or {})))
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(
                [{"op": "add", "path": "/metadata/labels", "value": labels}]).encode()).decode()
        elif self.path == "/annotate":
            notes = dict((obj.get("metadata") or {}).get("annotations") or {}, annotated="yes")
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(
                [{"op": "add", "path": "/metadata/annotations", "value": notes}]).encode()).decode()
        elif self.path == "/deny" and "forbidden" in (obj.get("data") or {}):
            response = {"uid": req["uid"], "allowed": False, "status": {"message": "the key 'forbidden' is forbidden"}}
        elif self.path == "/slow":
            time.sleep(3)
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webhook")
    ca_bundle = _pki(tmp, ("hooks.webhook-svc.svc",))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp / "tls.crt"), str(tmp / "tls.key"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ca_bundle
    server.shutdown()


def _config(kind, name, ns, hooks):
    return json.dumps({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
                       "webhooks": [dict({
                           "sideEffects": "None", "admissionReviewVersions": ["v1"],
                           "namespaceSelector": {"matchLabels": {"webhook-test": ns}},
                           "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                      "resources": ["configmaps"]}]}, **h) for h in hooks]})


@pytest.fixture
def scoped(kubectl, ns):
    kubectl("label", "namespace", ns, f"webhook-test={ns}")
    made = []
    yield made
    for kind, name in made:
        kubectl("delete", kind, name, "--wait=false")


def _apply(kubectl, scoped, kind, ns, hooks):
    name = f"wh-{ns[-12:].strip('-')}-{os.urandom(2).hex()}"
    kubectl("apply", "-f", "-", input=_config(kind, name, ns, hooks))
    scoped.append((kind.lower(), name))


def test_mutating_webhook_patches_objects(kubectl, ns, scoped, webhook_server):
    url, ca = webhook_server
    _apply(kubectl, scoped, "MutatingWebhookConfiguration", ns, [
        {"name": "label.example.com", "clientConfig": {"url": url + "/mutate", "caBundle": ca}}])

    def created():
        name = f"cm-{os.urandom(2).hex()}"
        kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=b")
        return kubectl.json("get", "configmap", name, "-n", ns)["metadata"].get("labels", {}).get("mutated")
    assert eventually(created) == "yes"
    path, req = Handler.calls[-1]
    assert path == "/mutate" and req["operation"] == "CREATE" and req["namespace"] == ns
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["userInfo"]["username"] == "kubernetes-admin"
    other = kubectl("create", "configmap", "elsewhere", "-n", "default", "--dry-run=server", "-o", "json").stdout
    assert "mutated" not in other  # the namespace selector keeps it to the labelled namespace


def test_validating_webhook_denies(kubectl, ns, scoped, webhook_server):
    url, ca = webhook_server
    _apply(kubectl, scoped, "ValidatingWebhookConfiguration", ns, [
        {"name": "deny.example.com", "clientConfig": {"url": url + "/deny", "caBundle": ca}}])

    def refused():
        out = kubectl("create", "configmap", f"bad-{os.urandom(2).hex()}", "-n", ns, "--from-literal=forbidden=1",
                      check=False)
        return out.returncode != 0 and out.stderr
    message = eventually(refused)
    assert 'admission webhook "deny.example.com" denied the request: the key \'forbidden\' is forbidden' in message
    kubectl("create", "configmap", "fine", "-n", ns, "--from-literal=ok=1")


def test_failure_policy_for_unreachable_and_slow_webhooks(kubectl, ns, scoped, webhook_server):
    url, ca = webhook_server
    _apply(kubectl, scoped, "ValidatingWebhookConfiguration", ns, [
        {"name": "down.example.com", "failurePolicy": "Ignore",
         "clientConfig": {"url": "https://127.0.0.1:1/nothing", "caBundle": ca}},
        {"name": "slow.example.com", "timeoutSeconds": 1, "clientConfig": {"url": url + "/slow", "caBundle": ca}}])

    def refused():
        out = kubectl("create", "configmap", f"x-{os.urandom(2).hex()}", "-n", ns, check=False)
        return out.returncode != 0 and out.stderr
    message = eventually(refused)
    assert 'Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: ' in message
    assert "context deadline exceeded" in message and "down.example.com" not in message


def test_untrusted_certificate_fails_the_call(kubectl, ns, scoped, webhook_server):
    url, _ = webhook_server
    other_ca = _pki(__import__("pathlib").Path(__import__("tempfile").mkdtemp(prefix="webhook-other-")))
    _apply(kubectl, scoped, "ValidatingWebhookConfiguration", ns, [
        {"name": "mistrust.example.com", "clientConfig": {"url": url + "/deny", "caBundle": other_ca}}])

    def refused():
        out = kubectl("create", "configmap", f"x-{os.urandom(2).hex()}", "-n", ns, check=False)
        return out.returncode != 0 and out.stderr
    assert "certificate verify failed" in eventually(refused)


def test_reinvocation_if_needed(kubectl, ns, scoped, webhook_server):
    url, ca = webhook_server
    _apply(kubectl, scoped, "MutatingWebhookConfiguration", ns, [
        {"name": "a-label.example.com", "reinvocationPolicy": "IfNeeded",
         "clientConfig": {"url": url + "/mutate", "caBundle": ca}},
        {"name": "b-annotate.example.com", "clientConfig": {"url": url + "/annotate", "caBundle": ca}}])

    def created():
        name = f"cm-{os.urandom(2).hex()}"
        Handler.calls.clear()
        kubectl("create", "configmap", name, "-n", ns)
        return [p for p, _ in Handler.calls] == ["/mutate", "/annotate", "/mutate"] and name
    name = eventually(created)
    assert name, Handler.calls
    meta = kubectl.json("get", "configmap", name, "-n", ns)["metadata"]
    assert meta["annotations"]["annotated"] == "yes" and meta["labels"]["mutated"] == "yes"


def test_webhook_configurations_are_validated(kubectl, ns):
    out = kubectl("apply", "-f", "-", check=False, input=_config("ValidatingWebhookConfiguration", "bad-" + ns[-8:], ns, [
        {"name": "short", "sideEffects": "Unknown", "clientConfig": {"url": "http://x"}}]))
    assert 'webhooks[0].sideEffects: Unsupported value: "Unknown"' in out.stderr
    assert "webhooks[0].clientConfig.url: Invalid value: \"http://x\": 'https' is the only allowed URL scheme" \
        in out.stderr


def test_webhook_behind_a_service(kubectl, ns, scoped, webhook_server):
    """clientConfig.service: reached at the Service's ready endpoint, the certificate checked for
    <service>.<namespace>.svc, as kube-apiserver does."""
    url, ca = webhook_server
    port = int(url.rsplit(":", 1)[1])
    kubectl("create", "namespace", "webhook-svc", check=False)
    kubectl("apply", "-n", "webhook-svc", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hooks"},
         "spec": {"ports": [{"port": 443, "targetPort": "https", "name": "https"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "hooks-1", "labels": {"kubernetes.io/service-name": "hooks"}},
         "addressType": "IPv4", "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}]}))
    _apply(kubectl, scoped, "ValidatingWebhookConfiguration", ns, [
        {"name": "svc-deny.example.com", "clientConfig": {
            "service": {"namespace": "webhook-svc", "name": "hooks", "path": "/deny"}, "caBundle": ca}}])

    def refused():
        out = kubectl("create", "configmap", f"bad-{os.urandom(2).hex()}", "-n", ns, "--from-literal=forbidden=1",
                      check=False)
        return out.returncode != 0 and out.stderr
    assert 'admission webhook "svc-deny.example.com" denied the request' in eventually(refused)
    assert Handler.calls[-1][0] == "/deny"
    kubectl("delete", "namespace", "webhook-svc", "--wait=false")
