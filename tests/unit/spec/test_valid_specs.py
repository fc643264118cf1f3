"""Valid cluster files load into the typed model with defaults applied and paths resolved."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from provisioner.spec import (
    Artifacts,
    ClusterSpec,
    EtcdSettings,
    Networking,
    SSHSettings,
    load_cluster,
    validate_cluster,
)

from .documents import host, inventory, minimal
from .keys import write_private_key


@dataclass
class Valid:
    name: str
    cluster: dict[str, Any]
    files: dict[str, Any] = field(default_factory=dict)  # more YAML files, by relative path
    keys: tuple[str, ...] = ()  # more key files to create, relative to the work dir
    check: Callable[[ClusterSpec, Path], None] = lambda spec, tmp: None


def full() -> dict[str, Any]:
    doc = minimal()
    doc["spec"] = {
        "ssh": {"user": "admin", "port": 2222, "key": "keys/cluster"},
        "hosts": [
            host("cp1", "10.0.0.11", "control-plane", "etcd"),
            host("cp2", "10.0.0.12", "control-plane", "etcd"),
            host("cp3", "fd00::13", "control-plane", "etcd", ssh={"user": "debian"}),
            host("node-1", "node-1.lab.example", "worker", ssh={"port": 22, "key": "keys/n1"}),
        ],
        "networking": {"podCIDR": "10.200.0.0/16", "serviceCIDR": "10.32.0.0/24",
                       "dnsDomain": "lab.internal"},
        "etcd": {"clientPort": 12379, "peerPort": 12380, "dataDir": "/srv/etcd"},
        "artifacts": {"etcd": "wheel", "wheelhouse": "wheels"},
    }
    return doc


def check_minimal(spec: ClusterSpec, tmp: Path) -> None:
    assert spec.name == "lab"
    assert spec.source == tmp / "cluster.yaml"
    assert [h.name for h in spec.hosts] == ["cp1"]
    assert spec.hosts[0].roles == ("control-plane", "etcd")
    assert spec.hosts[0].ssh == SSHSettings(user="root", port=22, key=tmp / "id_test")
    assert spec.networking == Networking(
        pod_cidr=ipaddress.ip_network("10.244.0.0/16"),
        service_cidr=ipaddress.ip_network("10.96.0.0/12"),
        dns_domain="cluster.local",
    )
    assert spec.etcd == EtcdSettings()
    assert spec.artifacts == Artifacts(etcd="wheel", wheelhouse=None)
    assert spec.warnings == ()


def check_full(spec: ClusterSpec, tmp: Path) -> None:
    assert [h.name for h in spec.control_plane_hosts] == ["cp1", "cp2", "cp3"]
    assert [h.name for h in spec.etcd_hosts] == ["cp1", "cp2", "cp3"]
    assert [h.name for h in spec.worker_hosts] == ["node-1"]
    assert spec.host("cp1").ssh == SSHSettings("admin", 2222, tmp / "keys" / "cluster")
    assert spec.host("cp3").ssh == SSHSettings("debian", 2222, tmp / "keys" / "cluster")
    assert spec.host("cp3").address == "fd00::13"
    assert spec.host("node-1").ssh == SSHSettings("admin", 22, tmp / "keys" / "n1")
    assert spec.networking.pod_cidr == ipaddress.ip_network("10.200.0.0/16")
    assert spec.networking.service_cidr == ipaddress.ip_network("10.32.0.0/24")
    assert spec.networking.dns_domain == "lab.internal"
    assert spec.etcd == EtcdSettings(client_port=12379, peer_port=12380, data_dir="/srv/etcd")
    assert spec.artifacts == Artifacts(etcd="wheel", wheelhouse=tmp / "wheels")


def inventory_only() -> dict[str, Any]:
    doc = minimal()
    doc["spec"] = {"inventory": "lab/hosts.yaml"}
    return doc


def check_inventory_only(spec: ClusterSpec, tmp: Path) -> None:
    assert [(h.name, h.address) for h in spec.hosts] == [
        ("lab-1", "10.213.0.11"), ("lab-2", "10.213.0.12"), ("lab-3", "10.213.0.13")]
    # the inventory's own ssh block, relative to the inventory file
    assert spec.host("lab-1").ssh == SSHSettings("root", 22, tmp / "lab" / "id_lab")
    assert spec.host("lab-3").ssh == SSHSettings("root", 2200, tmp / "lab" / "id_lab")
    assert [h.name for h in spec.etcd_hosts] == ["lab-1"]


LAB_INVENTORY = inventory(
    [host("lab-1", "10.213.0.11", "control-plane", "etcd"),
     host("lab-2", "10.213.0.12", "worker"),
     host("lab-3", "10.213.0.13", "worker", ssh={"port": 2200})],
    ssh={"key": "id_lab"},
)


def inline_and_inventory() -> dict[str, Any]:
    doc = minimal()
    doc["spec"]["inventory"] = "more/hosts.yaml"
    doc["spec"]["ssh"] = {"user": "ops", "key": "id_test"}
    doc["spec"]["hosts"][0]["ssh"] = None  # an empty ssh block overrides nothing
    return doc


def check_inline_and_inventory(spec: ClusterSpec, tmp: Path) -> None:
    assert [h.name for h in spec.hosts] == ["cp1", "w1", "w2"]  # inventory hosts appended
    assert spec.host("cp1").ssh == SSHSettings("ops", 22, tmp / "id_test")
    # no ssh in the inventory: the cluster's spec.ssh applies, key relative to cluster.yaml
    assert spec.host("w1").ssh == SSHSettings("ops", 22, tmp / "id_test")
    # a host's own key is relative to the file that names it: the inventory
    assert spec.host("w2").ssh == SSHSettings("ops", 22, tmp / "more" / "id_w2")


def home_default_key() -> dict[str, Any]:
    doc = minimal()
    del doc["spec"]["ssh"]
    return doc


def check_home_default_key(spec: ClusterSpec, tmp: Path) -> None:
    assert spec.hosts[0].ssh == SSHSettings("root", 22, tmp / "home" / ".ssh" / "id_ed25519")


def tilde_key() -> dict[str, Any]:
    doc = minimal()
    doc["spec"]["ssh"] = {"key": "~/keys/k"}
    doc["spec"]["networking"] = None  # an empty section means "all defaults"
    return doc


def check_tilde_key(spec: ClusterSpec, tmp: Path) -> None:
    assert spec.hosts[0].ssh.key == tmp / "home" / "keys" / "k"
    assert spec.networking.dns_domain == "cluster.local"


def etcd_only() -> dict[str, Any]:
    doc = minimal()
    doc["spec"]["hosts"] = [host("e1", "10.0.0.11", "etcd"), host("e2", "10.0.0.12", "etcd"),
                            host("e3", "10.0.0.13", "etcd")]
    return doc


def check_etcd_only(spec: ClusterSpec, tmp: Path) -> None:
    assert not spec.control_plane_hosts and not spec.worker_hosts
    assert [h.name for h in spec.etcd_hosts] == ["e1", "e2", "e3"]


VALID = [
    Valid("etcd_hosts_alone_make_an_etcd_cluster", etcd_only(), check=check_etcd_only),
    Valid("minimal_file_gets_every_default", minimal(), check=check_minimal),
    Valid("full_file_keeps_every_value", full(), keys=("keys/cluster", "keys/n1"),
          files={"wheels/.keep": ""}, check=check_full),
    Valid("inventory_only_hosts_use_inventory_ssh_relative_to_inventory", inventory_only(),
          files={"lab/hosts.yaml": LAB_INVENTORY}, keys=("lab/id_lab",),
          check=check_inventory_only),
    Valid("inline_and_inventory_hosts_are_merged_in_order", inline_and_inventory(),
          files={"more/hosts.yaml": inventory([
              host("w1", "10.0.0.21", "worker"),
              host("w2", "10.0.0.22", "worker", ssh={"key": "id_w2"})])},
          keys=("more/id_w2",), check=check_inline_and_inventory),
    Valid("default_key_comes_from_home", home_default_key(), keys=("home/.ssh/id_ed25519",),
          check=check_home_default_key),
    Valid("tilde_in_key_is_expanded_and_empty_section_means_defaults", tilde_key(),
          keys=("home/keys/k",), check=check_tilde_key),
]


@pytest.mark.parametrize("case", VALID, ids=[case.name for case in VALID])
def test_valid_file_loads(case: Valid, write, workdir: Path) -> None:
    for name, data in case.files.items():
        write(name, data)
    for key in case.keys:
        write_private_key(workdir / key)
    write("cluster.yaml", case.cluster)

    spec = load_cluster("cluster.yaml")

    case.check(spec, workdir)
    assert validate_cluster("cluster.yaml") == (spec, [], [])


def test_spec_can_be_loaded_by_absolute_path_from_elsewhere(write, workdir, monkeypatch):
    write("cluster.yaml", minimal())
    monkeypatch.chdir(workdir / "home")
    spec = load_cluster(workdir / "cluster.yaml")
    assert spec.hosts[0].ssh.key == workdir / "id_test"
    assert spec.source == workdir / "cluster.yaml"


@pytest.mark.parametrize("data_dir", ["/var/lib/etcd", "/srv/etcd", "/data/etcd",
                                      "/opt/etcd-data", "/home/etcd/data", "/var/lib/etcd_2.d"])
def test_dedicated_data_dirs_are_accepted(data_dir, write) -> None:
    doc = minimal()
    doc["spec"]["etcd"] = {"dataDir": data_dir}
    write("cluster.yaml", doc)
    assert load_cluster("cluster.yaml").etcd.data_dir == data_dir
