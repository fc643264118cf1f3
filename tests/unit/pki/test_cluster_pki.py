"""The cluster PKI directory issued from the workflow's certificate table: first run issues
everything, re-runs reuse, changes re-issue; a dry run's `stale_certificates` agrees."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509

from provisioner.phases import CREATE_PHASES
from provisioner.phases.owned import ownership
from provisioner.pki.certs import issue, new_ca
from provisioner.pki.cluster import ensure_certificates, load_pair, stale_certificates
from provisioner.pki.kubeconfig import render_kubeconfig, write_kubeconfig
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

TABLE = ownership(CREATE_PHASES).certificates
SSH = SSHSettings(user="root", port=22, key=Path("/k"))

ALL = [
    "etcd/ca", "ca", "front-proxy-ca", "apiserver", "apiserver-kubelet-client",
    "front-proxy-client", "etcd/server-cp1", "etcd/peer-cp1", "etcd/server-cp2", "etcd/peer-cp2",
    "etcd/healthcheck-client", "apiserver-etcd-client", "admin", "super-admin",
    "controller-manager", "scheduler", "kubelet-client-cp1", "kubelet-serving-cp1", "sa",
    "metrics-server",
]


def Member(name: str, address: str) -> Host:  # noqa: N802 - reads as the record it builds
    return Host(name, address, ("etcd",), SSH)


def _spec(members: list[Host], dns_domain: str = "cluster.local") -> ClusterSpec:
    hosts = [dataclasses.replace(members[0], roles=("control-plane", "etcd")), *members[1:]]
    return ClusterSpec(name="t", source=Path("/c.yaml"), hosts=tuple(hosts),
                       networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                                             ipaddress.ip_network("10.96.0.0/12"), dns_domain),
                       etcd=EtcdSettings(), artifacts=Artifacts())


def _ensure(pki: Path, members: list[Host]) -> list[str]:
    spec = _spec(members)
    predicted = stale_certificates(pki, TABLE, spec)
    issued = ensure_certificates(pki, TABLE, spec)
    assert sorted(predicted) == sorted(issued)  # what a dry run shows is what a run issues
    return issued


def _snapshot(pki: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(pki)): (p.read_bytes(), p.stat().st_mtime_ns) for p in pki.rglob("*") if p.is_file()}


def test_first_run_issues_everything_second_run_nothing(tmp_path: Path):
    members = [Member("cp1", "10.0.0.11"), Member("cp2", "10.0.0.12")]
    assert sorted(_ensure(tmp_path, members)) == sorted(ALL)
    before = _snapshot(tmp_path)
    assert _ensure(tmp_path, members) == []
    assert _snapshot(tmp_path) == before
    for key in tmp_path.rglob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key


def test_member_certificates_name_the_member(tmp_path: Path):
    _ensure(tmp_path, [Member("cp1", "10.0.0.11")])
    pair = load_pair(tmp_path, "etcd/peer-cp1")
    pair.cert.verify_directly_issued_by(load_pair(tmp_path, "etcd/ca").cert)
    san = pair.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"cp1", "localhost"}
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"10.0.0.11", "127.0.0.1", "::1"}


def test_apiserver_certificate_names_service_ip_and_cluster_dns(tmp_path: Path):
    ensure_certificates(tmp_path, TABLE, _spec([Member("cp1", "10.0.0.11")], "corp.local"))
    san = load_pair(tmp_path, "apiserver").cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc.corp.local" in san.get_values_for_type(x509.DNSName)
    assert {"10.96.0.1", "10.0.0.11", "127.0.0.1"} <= {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def test_adding_a_member_issues_only_its_certificates(tmp_path: Path):
    _ensure(tmp_path, [Member("cp1", "10.0.0.11")])
    issued = _ensure(tmp_path, [Member("cp1", "10.0.0.11"), Member("cp3", "10.0.0.13")])
    assert sorted(issued) == ["etcd/peer-cp3", "etcd/server-cp3"]


def test_a_changed_address_reissues_that_members_certificates(tmp_path: Path):
    _ensure(tmp_path, [Member("cp1", "10.0.0.11"), Member("cp2", "10.0.0.12")])
    issued = _ensure(tmp_path, [Member("cp1", "10.0.0.11"), Member("cp2", "10.0.0.99")])
    assert sorted(issued) == ["etcd/peer-cp2", "etcd/server-cp2"]


def test_a_lost_ca_reissues_everything_it_signed(tmp_path: Path):
    members = [Member("cp1", "10.0.0.11")]
    _ensure(tmp_path, members)
    (tmp_path / "etcd" / "ca.key").unlink()
    issued = _ensure(tmp_path, members)
    assert sorted(issued) == sorted(["etcd/ca", "etcd/server-cp1", "etcd/peer-cp1",
                                     "etcd/healthcheck-client", "apiserver-etcd-client"])


def test_kubeconfig_carries_the_pems_and_is_private(tmp_path: Path):
    ca = new_ca("kubernetes")
    admin = issue(ca, "kubernetes-admin", organizations=["system:masters"], client=True)
    text = render_kubeconfig(cluster_name="lab", server="https://10.0.0.11:6443", ca_pem=ca.cert_pem(),
                             user="kubernetes-admin", client=admin)
    config = yaml.safe_load(text)
    assert config["current-context"] == "kubernetes-admin@lab"
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://10.0.0.11:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.cert_pem()
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == admin.cert_pem()
    assert base64.b64decode(user["client-key-data"]) == admin.key_pem()
    path = tmp_path / "admin.conf"
    write_kubeconfig(path, text)
    assert path.stat().st_mode & 0o777 == 0o600


def test_kubeconfig_with_a_token(tmp_path: Path):
    ca = new_ca("kubernetes")
    config = yaml.safe_load(render_kubeconfig(cluster_name="lab", server="https://x:6443",
                                              ca_pem=ca.cert_pem(), user="bootstrap", token="abcdef.0123456789abcdef"))
    assert config["users"][0]["user"] == {"token": "abcdef.0123456789abcdef"}
