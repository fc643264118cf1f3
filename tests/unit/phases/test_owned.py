"""What each phase declares it owns, resolved per host: the one list delete, verify and the
pki phase read."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from provisioner.phases import CREATE_PHASES
from provisioner.phases.owned import DataDir, Directory, File, Owned, Unit, ownership
from provisioner.pki.table import Certificate
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

SSH = SSHSettings(user="root", port=22, key=Path("/k"))


def spec(data_dir: str = "/srv/etcd data") -> ClusterSpec:
    return ClusterSpec(
        name="lab", source=Path("/c.yaml"),
        hosts=(Host("cp1", "10.0.0.11", ("control-plane", "etcd"), SSH),
               Host("e2", "10.0.0.12", ("etcd",), SSH),
               Host("w1", "10.0.0.21", ("worker",), SSH)),
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12")),
        etcd=EtcdSettings(data_dir=data_dir), artifacts=Artifacts())


def test_a_share_holds_declared_paths_certificates_and_the_directories_they_need():
    owned = Owned(
        certificates=(Certificate("kubelet", "ca", "system:node", roles=("worker",),
                                  remote="/var/lib/kubelet/pki/kubelet"),),
        files=(File("/etc/kubernetes/kubelet.conf", ("worker",), mode="600", secret=True),),
        directories=(Directory("/etc/kubernetes/manifests", ("control-plane",)),),
        units=(Unit("kubelet.service", ("worker", "control-plane")),),
        data_dirs=(DataDir(lambda s: s.etcd.data_dir, ("etcd",)),),
    )
    cluster = spec()
    worker = owned.share(cluster, cluster.hosts[2])
    assert [(f.path, f.mode, f.secret) for f in worker.files] == [
        ("/etc/kubernetes/kubelet.conf", "600", True),
        ("/var/lib/kubelet/pki/kubelet.crt", "644", True),  # certificates are never shown
        ("/var/lib/kubelet/pki/kubelet.key", "600", True)]
    # Parents up to a system directory (/var/lib, /etc), which existed before create.
    assert worker.directories == ("/var/lib/kubelet/pki", "/var/lib/kubelet", "/etc/kubernetes")
    assert [u.path for u in worker.units] == ["/etc/systemd/system/kubelet.service"]
    assert worker.data_dirs == ()
    control_plane = owned.share(cluster, cluster.hosts[0])
    assert control_plane.files == ()
    assert control_plane.directories == ("/etc/kubernetes/manifests", "/etc/kubernetes")
    assert control_plane.data_dirs == ("/srv/etcd data",)


def test_the_workflow_declares_each_path_once_and_a_worker_only_its_node_share():
    cluster = spec()
    owners: dict[str, list[str]] = {}
    for phase in CREATE_PHASES:
        if isinstance(phase.owns, Owned):
            for host in cluster.hosts:
                for path in phase.owns.share(cluster, host).paths:
                    owners.setdefault(path, [])
                    if phase.name not in owners[path]:
                        owners[path].append(phase.name)
    assert {path: names for path, names in owners.items() if len(names) > 1} == {}
    worker = ownership(CREATE_PHASES).share(cluster, cluster.hosts[2])
    assert set(worker.paths) == {
        "/etc/systemd/system/provisioner-runtime.service", "/etc/systemd/system/kubelet.service",
        "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf",
        "/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/pki/kubelet.crt", "/var/lib/kubelet/pki/kubelet.key",
        *(f"/opt/cni/bin/provisioner-{p}" for p in ("bridge", "host-local", "portmap", "loopback")),
        # the registry's CA and this node's client pair (spec.registry, on by default)
        *(f"/var/lib/provisioner/runtime/certs.d/{cluster.registry_endpoint}/{name}"
          for name in ("ca.crt", "client.cert", "client.key"))}
    # No CA key on a worker: its only private keys are its kubelet's serving key and its
    # registry client key.
    assert sorted(p for p in worker.paths if p.endswith(".key")) == [
        "/var/lib/kubelet/pki/kubelet.key",
        f"/var/lib/provisioner/runtime/certs.d/{cluster.registry_endpoint}/client.key"]
    assert set(worker.data_dirs) == {"/opt/provisioner/venv", "/opt/provisioner/wheelhouse",
                                     "/var/lib/provisioner/runtime", "/var/lib/cni",
                                     "/var/lib/kubelet"}
    etcd_only = ownership(CREATE_PHASES).share(cluster, cluster.hosts[1])
    assert not any("kubelet" in path or "cni" in path for path in etcd_only.paths)


def test_every_etcd_member_holds_its_own_pair_and_the_table_names_each_once():
    cluster = spec()
    table = ownership(CREATE_PHASES).certificates
    assert len({row.name for row in table}) == len(table)
    member = {f.path for f in ownership(CREATE_PHASES).share(cluster, cluster.hosts[1]).files}
    assert {"/etc/kubernetes/pki/etcd/server.key", "/etc/kubernetes/pki/etcd/peer.crt",
            "/etc/kubernetes/pki/etcd/ca.crt", "/etc/etcd/initial-cluster.env"} <= member
    assert "/etc/kubernetes/pki/ca.key" not in member  # only control-plane hosts sign
