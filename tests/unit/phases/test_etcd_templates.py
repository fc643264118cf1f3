"""The etcd unit and first-start settings rendered for a member."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from provisioner.phases.etcd import render_initial_env, render_unit
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings


def _spec() -> ClusterSpec:
    ssh = SSHSettings(user="root", port=22, key=Path("/k"))
    hosts = tuple(
        Host(name=f"cp{i}", address=f"10.0.0.1{i}", roles=("control-plane", "etcd"), ssh=ssh)
        for i in (1, 2, 3)
    )
    return ClusterSpec(
        name="prod",
        source=Path("/c.yaml"),
        hosts=hosts,
        networking=Networking(
            pod_cidr=ipaddress.ip_network("10.244.0.0/16"),
            service_cidr=ipaddress.ip_network("10.96.0.0/12"),
            dns_domain="cluster.local",
        ),
        etcd=EtcdSettings(client_port=2379, peer_port=2380, data_dir="/var/lib/etcd"),
        artifacts=Artifacts(),
        warnings=(),
    )


def test_unit_uses_tls_with_client_certificates_on_both_sides():
    spec = _spec()
    unit = render_unit(spec, spec.hosts[1], "abc123")
    assert "--name=cp2" in unit
    assert "--listen-client-urls=https://10.0.0.12:2379,https://127.0.0.1:2379" in unit
    assert "--initial-advertise-peer-urls=https://10.0.0.12:2380" in unit
    assert "--client-cert-auth=true" in unit and "--peer-client-cert-auth=true" in unit
    assert "http://10.0.0.12" not in unit  # no plain-text listener on the network
    assert "# certificates: abc123" in unit
    assert "EnvironmentFile=-/etc/etcd/initial-cluster.env" in unit


def test_unit_changes_when_certificates_change_and_only_then():
    spec = _spec()
    host = spec.hosts[0]
    assert render_unit(spec, host, "a") == render_unit(spec, host, "a")
    assert render_unit(spec, host, "a") != render_unit(spec, host, "b")


def test_initial_settings_list_every_member():
    spec = _spec()
    env = render_initial_env(spec, spec.hosts[0], [("cp1", "https://10.0.0.11:2380"), ("cp2", "https://10.0.0.12:2380")], "existing")
    assert "ETCD_INITIAL_CLUSTER=cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380\n" in env
    assert "ETCD_INITIAL_CLUSTER_STATE=existing\n" in env
    assert "ETCD_INITIAL_CLUSTER_TOKEN=provisioner-prod\n" in env
