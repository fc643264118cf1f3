"""The registry phase's declarations and certificates: one host serves, every node trusts,
a disabled registry owns nothing (and its clean-up still knows what to remove)."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509

from provisioner.phases import registry
from provisioner.phases.delete import removals
from provisioner.pki.certs import CertKeyPair, new_ca
from provisioner.spec import (
    Artifacts,
    ClusterSpec,
    EtcdSettings,
    Host,
    Networking,
    RegistrySettings,
    SSHSettings,
)

SSH = SSHSettings(user="root", port=22, key=Path("/k"))
CERTS_D = "/var/lib/provisioner/runtime/certs.d/10.0.0.11:5000"
NODE_SHARE = {f"{CERTS_D}/ca.crt", f"{CERTS_D}/client.cert", f"{CERTS_D}/client.key"}


def spec(**registry_settings) -> ClusterSpec:
    return ClusterSpec(
        name="lab", source=Path("/c.yaml"),
        hosts=(Host("cp1", "10.0.0.11", ("control-plane", "etcd"), SSH),
               Host("cp2", "10.0.0.12", ("control-plane",), SSH),
               Host("w1", "10.0.0.21", ("worker",), SSH),
               Host("etcd1", "10.0.0.31", ("etcd",), SSH)),
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12")),
        etcd=EtcdSettings(), artifacts=Artifacts(),
        registry=RegistrySettings(**registry_settings))


def paths(cluster: ClusterSpec, name: str) -> set[str]:
    return set(registry.OWNS.share(cluster, cluster.host(name)).paths)


def test_the_first_control_plane_host_serves_and_every_node_trusts():
    cluster = spec()
    assert cluster.registry_endpoint == "10.0.0.11:5000"
    assert paths(cluster, "cp1") == NODE_SHARE | {
        "/etc/systemd/system/provisioner-registry.service",
        "/opt/provisioner/registry/docker-registry", "/etc/provisioner-registry/config.yml",
        "/etc/provisioner-registry/pki/registry.crt", "/etc/provisioner-registry/pki/registry.key"}
    assert registry.OWNS.share(cluster, cluster.host("cp1")).data_dirs == (
        "/var/lib/provisioner/registry",)
    assert paths(cluster, "cp2") == NODE_SHARE
    assert paths(cluster, "w1") == NODE_SHARE
    assert paths(cluster, "etcd1") == set()  # no runtime there
    keys = [f for f in registry.OWNS.share(cluster, cluster.host("cp1")).files
            if f.path.endswith(".key")]
    assert {(f.mode, f.secret) for f in keys} == {("600", True)}


def test_the_port_names_the_trusted_directory():
    cluster = spec(port=5443)
    assert "/var/lib/provisioner/runtime/certs.d/10.0.0.11:5443/client.cert" in paths(cluster, "w1")
    assert "10.0.0.11:5443" in registry.config_for(cluster, cluster.host("cp1"))


def test_a_disabled_registry_owns_nothing_but_its_clean_up_still_finds_everything():
    cluster = spec(enabled=False)
    assert cluster.registry_host is None and cluster.registry_endpoint is None
    assert all(paths(cluster, h.name) == set() for h in cluster.hosts)
    assert registry.issuing(cluster) == []
    enabled = dataclasses.replace(cluster, registry=RegistrySettings())
    assert set(removals(registry.OWNS.share(enabled, enabled.host("w1"))).files) == NODE_SHARE


def test_the_configuration_requires_client_certificates_from_the_cluster_ca():
    cluster = spec()
    config = yaml.safe_load(registry.config_for(cluster, cluster.host("cp1")))
    assert config["http"]["addr"] == "10.0.0.11:5000"
    assert config["http"]["tls"] == {
        "certificate": "/etc/provisioner-registry/pki/registry.crt",
        "key": "/etc/provisioner-registry/pki/registry.key",
        "clientcas": ["/etc/kubernetes/pki/ca.crt"]}
    assert config["storage"]["filesystem"]["rootdirectory"] == "/var/lib/provisioner/registry"


def test_certificates_are_issued_once_for_the_serving_host_and_each_node(tmp_path):
    from provisioner.pki.cluster import ensure_certificates

    cluster = spec()
    new_ca("kubernetes").save(tmp_path, "ca")
    issued = [n for rows, s in registry.issuing(cluster)
              for n in ensure_certificates(tmp_path, rows, s)]
    assert sorted(issued) == ["registry-client-cp1", "registry-client-cp2", "registry-client-w1",
                              "registry-serving-cp1"]
    assert [n for rows, s in registry.issuing(cluster)
            for n in ensure_certificates(tmp_path, rows, s)] == []
    serving = CertKeyPair.load(tmp_path, "registry-serving-cp1").cert
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["cp1"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.11"]
    placed = {f.remote: f.local for f in registry.placed(cluster, cluster.host("w1"))}
    assert placed == {f"{CERTS_D}/ca.crt": "ca.crt",
                      f"{CERTS_D}/client.cert": "registry-client-w1.crt",
                      f"{CERTS_D}/client.key": "registry-client-w1.key"}


def test_the_phase_never_makes_a_cluster_ca_of_its_own(tmp_path):
    from types import SimpleNamespace

    import pytest

    from provisioner.errors import ProvisionerError

    ctx = SimpleNamespace(spec=spec(), state=SimpleNamespace(pki_dir=tmp_path))
    with pytest.raises(ProvisionerError, match="run `--only pki` first"):
        registry._issue_and_place(ctx, plan=None)
    assert list(tmp_path.iterdir()) == []
