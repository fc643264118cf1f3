"""`certs check-expiration`: every row of the table with its expiry, laid out as kubeadm's."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from provisioner.phases import CREATE_PHASES
from provisioner.phases.owned import ownership
from provisioner.pki.cluster import ensure_certificates
from provisioner.pki.expiry import expiration_table, residual
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

TABLE = ownership(CREATE_PHASES).certificates


def spec(*hosts: str) -> ClusterSpec:
    ssh = SSHSettings(user="root", port=22, key=Path("/k"))
    return ClusterSpec(
        name="t", source=Path("/c.yaml"),
        hosts=tuple(Host(n, f"10.0.0.{i + 11}", ("control-plane", "etcd"), ssh)
                    for i, n in enumerate(hosts)),
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12")),
        etcd=EtcdSettings(), artifacts=Artifacts())


def test_every_certificate_and_authority_is_listed_with_its_residual_time(tmp_path):
    ensure_certificates(tmp_path, TABLE, spec("cp1"))
    now = dt.datetime.now(dt.timezone.utc)

    text = expiration_table(tmp_path, TABLE, spec("cp1", "cp2"), now=now)

    leaves, authorities = text.split("\n\n")
    lines = {line.split()[0]: line for line in leaves.splitlines()[1:]}
    assert set(lines) == {"apiserver", "apiserver-etcd-client", "admin", "etcd/server-cp1",
                          "etcd/peer-cp1", "etcd/server-cp2", "etcd/peer-cp2",
                          "etcd/healthcheck-client", "apiserver-kubelet-client",
                          "front-proxy-client", "super-admin", "controller-manager",
                          "scheduler", "kubelet-client-cp1", "kubelet-client-cp2",
                          "kubelet-serving-cp1", "kubelet-serving-cp2", "metrics-server"}
    assert lines["etcd/server-cp1"].split()[-2:] == ["364d", "etcd/ca"]
    assert "not issued" in lines["etcd/server-cp2"]  # a host added to the spec, not created yet
    assert [line.split()[0] for line in authorities.splitlines()] == ["CERTIFICATE", "etcd/ca", "ca",
                                                                      "front-proxy-ca"]
    assert authorities.splitlines()[1].split()[-1] == "9y"


def test_the_registrys_certificates_are_listed_too(tmp_path):
    from provisioner.phases import registry

    cluster = spec("cp1")
    ensure_certificates(tmp_path, TABLE, cluster)
    for rows, narrowed in registry.issuing(cluster):
        ensure_certificates(tmp_path, rows, narrowed)

    text = expiration_table(tmp_path, TABLE, cluster, also=registry.issuing(cluster))

    leaves, authorities = text.split("\n\n")
    lines = {line.split()[0]: line for line in leaves.splitlines()[1:]}
    assert lines["registry-serving-cp1"].split()[-2:] == ["364d", "ca"]
    assert lines["registry-client-cp1"].split()[-2:] == ["364d", "ca"]
    assert [line.split()[0] for line in authorities.splitlines()] == ["CERTIFICATE", "etcd/ca", "ca",
                                                                      "front-proxy-ca"]


def test_residual_time_reads_as_kubeadm_prints_it():
    assert residual(dt.timedelta(days=800)) == "2y"
    assert residual(dt.timedelta(days=20, hours=3)) == "20d"
    assert residual(dt.timedelta(hours=5, minutes=1)) == "5h"
    assert residual(dt.timedelta(seconds=-1)) == "<invalid>"
    assert residual(None) == "not issued"
