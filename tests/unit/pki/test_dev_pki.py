"""`provisioner dev apiserver|cluster` hold the cluster's own certificate table, issued for one
loopback host: the same names, subjects and SANs a real cluster's local state has, keys 0600."""

from __future__ import annotations

import ipaddress
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from provisioner.dev import DevCluster
from provisioner.dev_pki import certificate_rows, dev_spec
from provisioner.phases import CREATE_PHASES
from provisioner.phases.owned import ownership
from provisioner.pki.cluster import load_pair, stale_certificates, wanted_certificates
from provisioner.pki.table import Authority


def _issued(directory) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def test_the_dev_pki_is_the_workflows_table_for_one_host(tmp_path):
    cluster = DevCluster(tmp_path, node_name="devbox")
    cluster.write_pki()

    rows = ownership(CREATE_PHASES).certificates
    assert certificate_rows() == rows
    names = ([r.name for r in rows if isinstance(r, Authority)]
             + [w.name for w in wanted_certificates(certificate_rows(), cluster.spec)])
    expected = {f"{n}.{ext}" for n in names for ext in ("crt", "key")} | {"sa.key", "sa.pub"}
    assert _issued(cluster.pki) == expected
    assert {"etcd/server-devbox.crt", "kubelet-client-devbox.crt", "front-proxy-client.crt",
            "kubelet-serving-devbox.crt"} <= expected
    for name in expected:
        mode = stat.S_IMODE((cluster.pki / name).stat().st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), name
    # Nothing is left to issue: the table and the directory agree.
    assert stale_certificates(cluster.pki, certificate_rows(), cluster.spec) == []


def test_dev_certificates_name_the_loopback_host(tmp_path):
    cluster = DevCluster(tmp_path, node_name="devbox")
    cluster.write_pki()

    apiserver = load_pair(cluster.pki, "apiserver").cert
    sans = apiserver.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    # The first address of the service range the dev API server is started with.
    assert ipaddress.ip_address("10.96.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
    kubelet = load_pair(cluster.pki, cluster.credentials.kubelet_client).cert
    assert kubelet.subject.rfc4514_string() == "CN=system:node:devbox,O=system:nodes"
    etcd = load_pair(cluster.pki, cluster.credentials.etcd_server).cert
    assert load_pair(cluster.pki, "etcd/ca").cert.subject == etcd.issuer


def test_a_fresh_start_issues_a_fresh_pki(tmp_path):
    cluster = DevCluster(tmp_path, node_name="devbox")
    cluster.write_pki()
    first = load_pair(cluster.pki, "ca").cert.fingerprint(hashes.SHA256())
    cluster.write_pki()
    assert load_pair(cluster.pki, "ca").cert.fingerprint(hashes.SHA256()) != first
    assert dev_spec("devbox", tmp_path).hosts[0].roles == ("control-plane", "etcd", "worker")
