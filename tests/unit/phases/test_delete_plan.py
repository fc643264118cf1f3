"""`delete cluster` removes exactly what create placed: each phase's share per host, in reverse
workflow order, and the probe and removal commands run by a real shell on a scratch tree that
also holds things create did not make (which must survive)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from provisioner.phases import CREATE_PHASES, DELETE_PHASES
from provisioner.phases.delete import Removals, merged, probe_command, removal_plan, removals
from provisioner.phases.owned import Owned
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings
from provisioner.workflow import walk

SSH = SSHSettings(user="root", port=22, key=Path("/k"))
PKI = "/etc/kubernetes/pki"


def spec(data_dir: str = "/var/lib/etcd") -> ClusterSpec:
    return ClusterSpec(
        name="lab", source=Path("/c.yaml"),
        hosts=(Host("cp1", "10.0.0.11", ("control-plane", "etcd"), SSH),
               Host("w1", "10.0.0.21", ("worker",), SSH)),
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12")),
        etcd=EtcdSettings(data_dir=data_dir), artifacts=Artifacts())


def phase_removals(cluster: ClusterSpec, host: Host) -> list[Removals]:
    """Each owning phase's removals on `host`, in the order delete runs them."""
    owners = {path: phase.owns for path, phase in walk(CREATE_PHASES)}
    return [removals(owners[path].share(cluster, host)) for path, _ in walk(DELETE_PHASES)
            if isinstance(owners.get(path), Owned)]


def test_delete_runs_the_owning_phases_in_reverse_order():
    created = [path for path, phase in walk(CREATE_PHASES) if phase.owns]
    assert [path for path, _ in walk(DELETE_PHASES)] == list(reversed(created))


K8S = "/etc/kubernetes"
NODE_FILES = {"/etc/systemd/system/kubelet.service", "/etc/systemd/system/provisioner-runtime.service",
              f"{K8S}/kubelet.conf", f"{PKI}/ca.crt",  # /var/lib/kubelet/* goes with its tree
              *(f"/opt/cni/bin/provisioner-{plugin}"
                for plugin in ("bridge", "host-local", "portmap", "loopback"))}
# The registry (spec.registry, on by default): its CA and client pair on every node's runtime,
# docker-registry itself on the first control-plane host.
CERTS_D = "/var/lib/provisioner/runtime/certs.d"
NODE_FILES |= {f"{CERTS_D}/10.0.0.11:5000/{name}" for name in ("ca.crt", "client.cert", "client.key")}
NODE_DIRECTORIES = (f"{CERTS_D}/10.0.0.11:5000", CERTS_D, "/var/lib/provisioner/runtime")
REGISTRY_FILES = {"/etc/systemd/system/provisioner-registry.service",
                  "/opt/provisioner/registry/docker-registry", "/etc/provisioner-registry/config.yml",
                  "/etc/provisioner-registry/pki/registry.crt",
                  "/etc/provisioner-registry/pki/registry.key"}
NODE_TREES = {"/opt/provisioner/venv", "/opt/provisioner/wheelhouse", "/var/lib/kubelet",
              "/var/lib/provisioner/runtime", "/var/lib/cni"}


def test_etcd_control_plane_host_removes_the_files_create_placed_and_nothing_wider():
    cluster = spec()
    everything = merged(phase_removals(cluster, cluster.hosts[0]))
    assert set(everything.files) == NODE_FILES | REGISTRY_FILES | {
        "/etc/systemd/system/etcd.service", "/etc/etcd/initial-cluster.env",
        f"{PKI}/etcd/ca.crt", f"{PKI}/etcd/server.crt", f"{PKI}/etcd/server.key",
        f"{PKI}/etcd/peer.crt", f"{PKI}/etcd/peer.key", f"{PKI}/etcd/healthcheck-client.crt",
        f"{PKI}/etcd/healthcheck-client.key", f"{PKI}/ca.key", f"{PKI}/sa.key",
        f"{PKI}/sa.pub", f"{PKI}/apiserver-etcd-client.crt", f"{PKI}/apiserver-etcd-client.key",
        f"{PKI}/apiserver.crt", f"{PKI}/apiserver.key", f"{PKI}/apiserver-kubelet-client.crt",
        f"{PKI}/apiserver-kubelet-client.key", f"{PKI}/front-proxy-ca.crt",
        f"{PKI}/front-proxy-client.crt", f"{PKI}/front-proxy-client.key",
        f"{K8S}/admin.conf", f"{K8S}/super-admin.conf", f"{K8S}/controller-manager.conf",
        f"{K8S}/scheduler.conf", f"{K8S}/encryption-config.yaml",
        *(f"{K8S}/manifests/{c}.yaml"
          for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"))}
    assert set(everything.trees) == NODE_TREES | {"/var/lib/etcd", "/var/lib/provisioner/registry"}
    assert everything.directories == (*NODE_DIRECTORIES[:2], f"{PKI}/etcd", NODE_DIRECTORIES[2],
                                      "/etc/cni/net.d", f"{K8S}/manifests", PKI,
                                      "/etc/provisioner-registry/pki", "/opt/cni/bin",
                                      "/opt/provisioner/registry", "/var/lib/kubelet",
                                      "/etc/cni", "/etc/etcd", K8S,
                                      "/etc/provisioner-registry", "/opt/cni", "/opt/provisioner")


def test_a_worker_loses_its_node_share_and_never_held_a_ca_key_or_control_plane_file():
    cluster = spec()
    everything = merged(phase_removals(cluster, cluster.hosts[1]))
    assert set(everything.files) == NODE_FILES | {f"{K8S}/bootstrap-kubelet.conf"}
    assert set(everything.trees) == NODE_TREES
    assert everything.directories == (*NODE_DIRECTORIES, "/etc/cni/net.d", PKI, "/opt/cni/bin",
                                      "/var/lib/kubelet", "/etc/cni", K8S,
                                      "/opt/cni", "/opt/provisioner")


def rebased(many: list[Removals], root: Path) -> list[Removals]:
    def move(paths):
        return tuple(f"{root}{p}" for p in paths)
    return [Removals(move(r.files), move(r.trees), move(r.directories)) for r in many]


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], check=True, capture_output=True,
                          text=True).stdout


def create_like(root: Path, many: list[Removals]) -> None:
    """What create leaves: every file, the trees with content, directories made on the way."""
    removals = merged(many)
    for path in removals.files:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("placed by create\n")
    for tree in removals.trees:
        (Path(tree) / "member" / "snap").mkdir(parents=True)
        (Path(tree) / "member" / "snap" / "db").write_text("data\n")
        (Path(tree) / ".hidden").write_text("x\n")


def delete_like(many: list[Removals] | Removals) -> list[str]:
    """Run each phase's probe and steps with a real shell, in order; return the descriptions."""
    done = []
    for one in many if isinstance(many, list) else [many]:
        steps = removal_plan(one, sh(probe_command(one)))
        for step in steps.steps:
            sh(step.command)
        done += [step.description for step in steps.steps]
    return done


def test_delete_keeps_what_was_there_before_and_a_second_delete_does_nothing(tmp_path):
    cluster = spec()
    removals = rebased(phase_removals(cluster, cluster.hosts[0]), tmp_path)
    # Before create: the host already had a file of its own in /etc/kubernetes and an etcd
    # client config in /etc/etcd; other units live next to etcd's.
    (tmp_path / "etc/kubernetes").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/notes.txt").write_text("mine\n")
    (tmp_path / "etc/etcd").mkdir(parents=True)
    (tmp_path / "etc/etcd/.etcdctl.conf").write_text("mine\n")
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/systemd/system/other.service").write_text("mine\n")
    create_like(tmp_path, removals)

    done = delete_like(removals)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["etc", "etc/etcd", "etc/etcd/.etcdctl.conf", "etc/kubernetes",
                    "etc/kubernetes/notes.txt", "etc/systemd", "etc/systemd/system",
                    "etc/systemd/system/other.service", "opt", "var", "var/lib",
                    "var/lib/provisioner"]
    assert f"remove {tmp_path}/var/lib/etcd" in done
    assert f"remove empty directory {tmp_path}/etc/kubernetes/pki" in done
    assert f"remove empty directory {tmp_path}/etc/kubernetes" not in done
    assert delete_like(removals) == []


def test_directories_create_made_go_when_nothing_else_is_in_them(tmp_path):
    cluster = spec()
    removals = rebased(phase_removals(cluster, cluster.hosts[0]), tmp_path)
    create_like(tmp_path, removals)

    done = delete_like(removals)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    # /var/lib/provisioner stays: lab hosts mount it (the runtime's root lives below it).
    assert left == ["etc", "etc/systemd", "etc/systemd/system", "opt", "var", "var/lib",
                    "var/lib/provisioner"]
    removed = [d for d in done if d.startswith("remove empty directory")]
    assert set(removed) == {f"remove empty directory {tmp_path}{d}" for d in (
        "/etc/etcd", "/opt/provisioner", f"{PKI}/etcd", PKI, "/etc/kubernetes",
        "/etc/kubernetes/manifests", "/opt/cni/bin", "/opt/cni", "/opt/provisioner/registry",
        "/etc/provisioner-registry/pki", "/etc/provisioner-registry", *NODE_DIRECTORIES[:2])}


def test_the_unit_is_stopped_and_reloaded_away_only_when_it_is_there():
    cluster = spec()
    etcd_share = next(r for r in phase_removals(cluster, cluster.hosts[0])
                      if any(u.name == "etcd.service" for u in r.units))
    assert [u.name for u in etcd_share.units] == ["etcd.service"]

    with_unit = removal_plan(etcd_share, "present /etc/systemd/system/etcd.service\n")
    assert with_unit.stop_units == ["etcd.service"] and with_unit.unit_removed
    assert with_unit.steps[0].command == "rm -f -- /etc/systemd/system/etcd.service"

    nothing = removal_plan(etcd_share, "")
    assert not nothing.stop_units and not nothing.unit_removed and nothing.steps == []


def test_paths_reach_the_shell_quoted(tmp_path):
    odd = tmp_path / "data dir;touch pwned"
    (odd / "member").mkdir(parents=True)
    removals = Removals(files=(), trees=(str(odd),), directories=())

    assert delete_like(removals) == [f"remove {odd}"]

    assert not odd.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not Path("pwned").exists()
