"""tests/kubelet: the serving certificate by CSR (serverTLSBootstrap: true).

A cluster of its own whose API server checks kubelets' serving certificates
(--kubelet-certificate-authority), the real controller manager running only csrsigning, and a
kubelet with serverTLSBootstrap on the session runtime. Until its CSR is approved the kubelet
serves its self-signed certificate and `kubectl logs` through the API server fails the check;
after `kubectl certificate approve` port 10250 serves the certificate the cluster CA signed
and `kubectl logs` works. A restarted kubelet serves the stored pair at once.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from provisioner.components.kubelet import servingcert
from provisioner.components.kubelet.runtimeview import NODE_NAME as NODE_LABEL
from tests.conftest import dev_cluster, free_port

from .conftest import (
    _SESSION,
    CGROUP_PARENT,
    KubeletProcess,
    core_api,
    node_ready,
    pod_manifest,
    prepare_namespace,
    wait_for,
)

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
NODE = f"kubelet-tls-{_SESSION}"
SIGNER = "kubernetes.io/kubelet-serving"


# -- pure parts ---------------------------------------------------------------------------

def test_subject_alt_names_name_the_host_and_its_addresses_once():
    import ipaddress
    assert servingcert.subject_alt_names("node-1", ["10.0.0.5", "node-1", "fd00::5"]) == [
        x509.DNSName("node-1"), x509.IPAddress(ipaddress.ip_address("10.0.0.5")),
        x509.IPAddress(ipaddress.ip_address("fd00::5"))]


@pytest.mark.parametrize("jitter, day", [(0.0, 70), (0.5, 80), (0.999999, 90)])
def test_renewal_falls_between_70_and_90_percent_of_the_life(jitter, day):
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    at = servingcert.renew_at(start, start + dt.timedelta(days=100), jitter)
    assert round((at - start).total_seconds() / 86400) == day


# -- on a real cluster ----------------------------------------------------------------------

class ServingCluster:
    def __init__(self, base: Path, runtime):
        self.api = dev_cluster(base / "api", node_name=NODE)
        self.runtime = runtime
        self.base = base
        self.manager: subprocess.Popen | None = None
        self.kubelet: KubeletProcess | None = None

    def start(self) -> None:
        self.api.write_pki()
        self.api.extra_args += [*self.api.kubelet_client_args(),
                                "--kubelet-certificate-authority", str(self.api.pki / "ca.crt")]
        self.api.start(fresh_pki=False)
        conf = self.api.table_kubeconfig("controller-manager", "system:kube-controller-manager")
        self.manager = subprocess.Popen(
            [sys.executable, "-m", "provisioner.components.controllers.main", "--kubeconfig",
             str(conf), "--controllers", "csrsigning", "--cluster-signing-cert-file",
             str(self.api.pki / "ca.crt"), "--cluster-signing-key-file",
             str(self.api.pki / "ca.key"), "--secure-port", str(free_port()),
             "--bind-address", "127.0.0.1", "--leader-elect=false"],
            stdout=open(self.base / "controller-manager.log", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.kubelet = KubeletProcess(self.base / "node", self.runtime, self.api, node=NODE,
                                      extra_config="serverTLSBootstrap: true\n")
        # a cgroup root of its own: the session kubelet sweeps its own root's empty pod groups
        text = self.kubelet.config.read_text()
        self.kubelet.config.write_text(text.replace(f"cgroupRoot: /{CGROUP_PARENT}\n",
                                                    f"cgroupRoot: /{CGROUP_PARENT}/tls\n"))
        self.kubelet.start()
        wait_for(lambda: node_ready(core_api(self.api), NODE), 90,
                 what=f"node {NODE} Ready ({self.kubelet.log})")

    def stop(self) -> None:
        if self.kubelet is not None:
            self.kubelet.stop()
            for pod in self.runtime.client.pods():     # its pods on the shared runtime
                if (pod.get("labels") or {}).get(NODE_LABEL) == NODE:
                    self.runtime.client.remove_pod(pod["id"])
        if self.manager is not None and self.manager.poll() is None:
            self.manager.terminate()
            self.manager.wait(30)
        self.api.stop()

    def kubectl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--kubeconfig", str(self.api.kubeconfig), *args],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def serving(runtime, tmp_path_factory):
    cluster = ServingCluster(tmp_path_factory.mktemp("kubelet-serving"), runtime)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def served_certificate(port: int) -> x509.Certificate:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def verifies_against(ca: Path, port: int) -> bool:
    """A full TLS check: chain to `ca` and the 127.0.0.1 IP SAN (what the API server checks)."""
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1"):
            return True
    except ssl.SSLError:
        return False


def serving_csrs(cluster: ServingCluster) -> list[dict]:
    listed = cluster.kubectl("get", "csr", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return [csr for csr in json.loads(listed.stdout)["items"]
            if csr["spec"]["signerName"] == SIGNER
            and csr["spec"]["username"] == f"system:node:{NODE}"]


def test_serving_certificate_is_requested_approved_and_served(serving):
    cluster, kubelet = serving, serving.kubelet
    api = core_api(cluster.api)
    namespace = "serving"
    prepare_namespace(api, cluster.api, namespace)
    api.create_namespaced_pod(namespace, pod_manifest("talker", NODE, [
        {"name": "main", "image": "busybox:latest",
         "command": ["sh", "-c", "echo hello from the node; sleep 3600"]}]))
    wait_for(lambda: api.read_namespaced_pod("talker", namespace).status.phase == "Running", 90,
             what=f"pod talker Running ({kubelet.log})")

    # filed, not approved: self-signed still, and the API server refuses to trust it
    csr = wait_for(lambda: serving_csrs(cluster), 60, what="the kubelet's serving CSR")[0]
    assert not (csr.get("status") or {}).get("conditions")
    ca = cluster.api.pki / "ca.crt"
    assert not verifies_against(ca, kubelet.port)
    refused = cluster.kubectl("logs", "-n", namespace, "talker")
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr

    approved = cluster.kubectl("certificate", "approve", csr["metadata"]["name"])
    assert approved.returncode == 0, approved.stderr
    wait_for(lambda: verifies_against(ca, kubelet.port), 60,
             what=f"port {kubelet.port} serving a CA-signed certificate ({kubelet.log})")
    served = served_certificate(kubelet.port)
    assert served.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        f"system:node:{NODE}"
    assert served.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "system:nodes"
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert NODE in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    logs = wait_for(lambda: (r := cluster.kubectl("logs", "-n", namespace, "talker"))
                    .returncode == 0 and r, 30, what="kubectl logs through the verified kubelet")
    assert "hello from the node" in logs.stdout
    stored = kubelet.base / "kubelet" / "pki" / servingcert.CURRENT
    assert stored.resolve().stat().st_mode & 0o777 == 0o600      # it holds the private key

    # a restarted kubelet serves the stored pair at once and asks for no new one
    kubelet.stop()
    kubelet.start()
    wait_for(lambda: verifies_against(ca, kubelet.port), 60,
             what=f"the restarted kubelet serving its stored certificate ({kubelet.log})")
    assert len(serving_csrs(cluster)) == 1


def test_a_denied_serving_request_leaves_the_self_signed_certificate(serving):
    node = f"kubelet-tls-deny-{_SESSION}"
    kubelet = KubeletProcess(serving.base / "deny-node", serving.runtime, serving.api, node=node,
                             extra_config="serverTLSBootstrap: true\n")
    text = kubelet.config.read_text()
    kubelet.config.write_text(text.replace(f"cgroupRoot: /{CGROUP_PARENT}\n",
                                           f"cgroupRoot: /{CGROUP_PARENT}/tls-deny\n"))
    kubelet.start()
    try:
        def filed():
            listed = json.loads(serving.kubectl("get", "csr", "-o", "json").stdout)["items"]
            return [c for c in listed if c["spec"]["username"] == f"system:node:{node}"
                    and c["spec"]["signerName"] == SIGNER]
        csr = wait_for(filed, 60, what=f"{node}'s serving CSR ({kubelet.log})")[0]
        denied = serving.kubectl("certificate", "deny", csr["metadata"]["name"])
        assert denied.returncode == 0, denied.stderr
        wait_for(lambda: "was denied" in kubelet.logs(), 30, what="the kubelet seeing the denial")
        assert "retry in 60s" in kubelet.logs()
        assert not verifies_against(serving.api.pki / "ca.crt", kubelet.port)
        assert kubelet.process.poll() is None          # still running, still serving
    finally:
        kubelet.stop()
