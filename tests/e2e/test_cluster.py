"""End to end on the local lab: create, grow, verify, break, converge, pin, delete.

Real hosts (systemd-nspawn machines with systemd and sshd), real SSH, real etcd: nothing here
is mocked. The tests tell one story on one lab in file order, and each can also run alone:
`cluster.ensure(...)` creates the cluster a test starts from unless this session already did.
This story is the host layer (SSH, sudo, pins, PKI, install, delete) and etcd, so its hosts are
etcd members only and the Kubernetes phases are skipped as not needed; test_kubernetes.py tells
the Kubernetes story on the same lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
import yaml

from provisioner.phases import CREATE_PHASES
from provisioner.workflow import select_phases

pytestmark = pytest.mark.e2e

PROVISIONER = str(Path(sys.executable).parent / "provisioner")
REPO = Path(__file__).resolve().parents[2]


class Cluster:
    """The CLI and the lab hosts as a user sees them."""

    def __init__(self, lab, workdir: Path, state_dir: Path):
        self.lab = lab
        self.workdir = workdir
        self.state_dir = state_dir
        inventory = yaml.safe_load(Path(lab.inventory_path).read_text())
        self.hosts = [dict(host, roles=["etcd"]) for host in inventory["hosts"]]
        self.key = inventory["ssh"]["key"]
        self.address = {h["name"]: h["address"] for h in self.hosts}
        self.created: str | None = None  # the spec file of the last successful create

    def ensure(self, name: str, hosts: list[dict]) -> Path:
        """The cluster of spec `name` exists (created now unless it was the last one made)."""
        path = self.spec(name, hosts)
        if self.created != name:
            _ok(self.create(path))
        return path

    def create(self, spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.cli("create", "cluster", "-f", str(spec), *args)
        if result.returncode == 0 and "--dry-run" not in args and "--only" not in args:
            self.created = spec.name
        return result

    def three(self) -> Path:
        return self.ensure("three.yaml", self.hosts)

    def spec(self, name: str, hosts: list[dict], **ssh: object) -> Path:
        document = {
            "apiVersion": "provisioner.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "e2e"},
            "spec": {"ssh": {"user": "root", "key": self.key, **ssh}, "hosts": hosts},
        }
        path = self.workdir / name
        path.write_text(yaml.safe_dump(document))
        return path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PROVISIONER_STATE_DIR=str(self.state_dir))
        return subprocess.run([PROVISIONER, *args], capture_output=True, text=True, env=env, timeout=900)

    def ssh(self, host: str, command: str) -> tuple[int, str]:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.state_dir / "clusters" / "e2e" / "known_hosts"))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(self.address[host], username="root", key_filename=self.key,
                       allow_agent=False, look_for_keys=False, timeout=10)
        try:
            _, stdout, _ = client.exec_command(command, timeout=60)
            output = stdout.read().decode()
            return stdout.channel.recv_exit_status(), output
        finally:
            client.close()


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cluster")
    return Cluster(lab, workdir, workdir / "state")


def _etcd_only_context(spec: Path):
    """What run_if predicates read, for a spec file of this story (etcd hosts only)."""
    from types import SimpleNamespace

    from provisioner.spec import load_cluster
    return SimpleNamespace(spec=load_cluster(str(spec)))


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_two_member_cluster_is_created_and_verified(cluster):
    hosts = cluster.hosts[:2]
    spec = cluster.spec("two.yaml", hosts)
    result = cluster.create(spec)
    out = _ok(result)
    # An even member count is allowed but warned about.
    assert "2 etcd members cannot survive the loss of one" in result.stderr
    for selected in select_phases(CREATE_PHASES):
        kubernetes = selected.phase.run_if is not None and not selected.phase.run_if(
            _etcd_only_context(spec))
        expected = "skipped: not needed for this cluster" if kubernetes else "done in"
        assert f"[{selected.path}] {expected}" in out
    assert f"[etcd] {hosts[0]['name']}: changed: etcd.service running and enabled" in out
    assert "PASS etcd write is replicated" in out
    # Private keys on hosts are 0600 and the unit is enabled under systemd.
    code, mode = cluster.ssh(hosts[1]["name"], "stat -c %a /etc/kubernetes/pki/etcd/server.key /etc/kubernetes/pki/etcd/peer.key")
    assert mode.split() == ["600", "600"]
    code, enabled = cluster.ssh(hosts[1]["name"], "systemctl is-enabled etcd.service")
    assert enabled.strip() == "enabled"


LISTENING_ON_2380 = """python3 -c 'import socket, time
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", 2380), 1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit(1)'"""


def test_port_in_use_on_a_new_host_is_reported_and_nothing_changes(cluster, lab_ssh):
    third = cluster.hosts[2]["name"]
    # The cluster has never contacted this host, so reach it with the lab's own key pinning.
    code, _, err = lab_ssh(third, "systemd-run --unit=squatter python3 -m http.server 2380")
    assert code == 0, err
    try:
        # systemd-run returns once the unit has started, not once the server listens
        code, _, err = lab_ssh(third, LISTENING_ON_2380)
        assert code == 0, f"the squatter does not listen on 2380: {err}"
        result = cluster.create(cluster.spec("three.yaml", cluster.hosts))
        assert result.returncode == 1
        assert f"host {third}: port 2380 already in use by another program" in result.stderr
        assert "Traceback" not in result.stderr
        code, _, _ = lab_ssh(third, "test -e /opt/provisioner")
        assert code != 0  # preflight failed, so nothing was installed
    finally:
        lab_ssh(third, "systemctl stop squatter")


def test_adding_a_third_host_joins_it_as_a_member(cluster):
    cluster.ensure("two.yaml", cluster.hosts[:2])
    spec = cluster.spec("three.yaml", cluster.hosts)
    third = cluster.hosts[2]["name"]
    dry = _ok(cluster.create(spec, "--dry-run"))
    assert f"[etcd] {third}: would add as a new etcd member and start it" in dry
    # Certificates the dry run has not issued are named, never shown.
    assert f"[pki/certs] local: would issue etcd/server-{third}" in dry
    assert f"[pki/place] {third}: would place /etc/kubernetes/pki/etcd/server.key" in dry
    out = _ok(cluster.create(spec))
    assert f"[etcd] {third}: changed: joined the etcd cluster" in out
    verify = _ok(cluster.cli("verify", "-f", str(spec), "--json"))
    records = json.loads(verify)
    members = [r for r in records if r["check"] == "etcd member list matches spec"]
    assert members[0]["ok"] and members[0]["detail"].startswith("3 members")
    assert {r["target"] for r in records if r["check"] == "etcd member healthy" and r["ok"]} == {
        h["name"] for h in cluster.hosts
    }
    assert {r["target"] for r in records if r["check"] == "files in place" and r["ok"]} == {
        h["name"] for h in cluster.hosts
    }
    expiry = _ok(cluster.cli("certs", "check-expiration", "-f", str(spec)))
    assert f"etcd/server-{third} " in expiry and "etcd/ca " in expiry
    assert "not issued" not in expiry and "<invalid>" not in expiry


def test_second_run_changes_nothing(cluster):
    spec = cluster.three()
    out = _ok(cluster.create(spec))
    assert "changed:" not in out, out
    assert "nothing to change: every host already matches the spec" in out
    dry = _ok(cluster.cli("create", "cluster", "-f", str(spec), "--dry-run"))
    assert "would" not in dry.replace("would be made", "")
    assert "nothing to change" in dry


def test_a_sudo_user_converges_the_same_cluster_and_one_without_sudo_is_named(cluster):
    cluster.three()
    # Two users with root's key on every host: one with passwordless sudo, one without.
    for host in cluster.hosts:
        code, _ = cluster.ssh(host["name"], (
            "set -e; for u in deploy nosudo; do id $u >/dev/null 2>&1 || useradd -m $u; "
            "install -d -m 700 -o $u -g $u /home/$u/.ssh; "
            "install -m 600 -o $u -g $u /root/.ssh/authorized_keys /home/$u/.ssh/; done; "
            "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy; chmod 440 /etc/sudoers.d/deploy"
        ))
        assert code == 0
    as_deploy = cluster.spec("sudo.yaml", cluster.hosts, user="deploy")
    out = _ok(cluster.cli("create", "cluster", "-f", str(as_deploy)))
    assert "nothing to change: every host already matches the spec" in out, out

    as_nosudo = cluster.spec("nosudo.yaml", cluster.hosts, user="nosudo")
    result = cluster.cli("create", "cluster", "-f", str(as_nosudo))
    assert result.returncode == 1
    for host in cluster.hosts:
        assert (f"host {host['name']}: user 'nosudo' cannot run commands as root with sudo without "
                "a password") in result.stderr
    assert "Traceback" not in result.stderr


def test_no_private_key_material_appears_in_any_output(cluster):
    spec = cluster.three()
    pki = cluster.state_dir / "clusters" / "e2e" / "pki"
    secrets = [line for key in pki.rglob("*.key") for line in key.read_text().splitlines()
               if line and not line.startswith("-----")]
    assert secrets
    outputs = [cluster.cli("-v", "create", "cluster", "-f", str(spec), "--dry-run"),
               cluster.cli("-v", "create", "cluster", "-f", str(spec), "--only", "pki/place",
                           "--only", "etcd"),
               cluster.cli("-v", "verify", "-f", str(spec), "--json")]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        text = result.stdout + result.stderr
        assert "PRIVATE KEY" not in text
        assert not [line for line in secrets if line in text]


def test_plain_pyinfra_roles_repair_drift_with_the_same_operations(cluster):
    spec = cluster.three()
    victim = cluster.hosts[0]["name"]
    unit = "/etc/systemd/system/etcd.service"
    _, before = cluster.ssh(victim, f"sha256sum {unit}")
    cluster.ssh(victim, f"echo '# drift' >> {unit}")
    # The dry run shows the drift as a unified diff of the rendered unit.
    dry = _ok(cluster.create(spec, "--dry-run", "--only", "etcd"))
    assert f"[etcd] {victim}: would unit etcd.service\n    --- {victim}:{unit}\n" in dry
    assert "\n    -# drift\n" in dry
    env = dict(os.environ, PROVISIONER_STATE_DIR=str(cluster.state_dir), PROVISIONER_SPEC=str(spec))
    pyinfra = str(Path(sys.executable).parent / "pyinfra")
    result = subprocess.run(
        [pyinfra, "-y", "--limit", victim, "inventories/pyinfra_inventory.py", "roles/etcd.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _, after = cluster.ssh(victim, f"sha256sum {unit}")
    assert after == before
    # The role restarted the member for its restored unit; the cluster is whole again.
    _ok(cluster.cli("verify", "-f", str(spec)))
    assert "nothing to change" in _ok(cluster.cli("create", "cluster", "-f", str(spec)))


def test_a_stopped_member_and_a_readable_key_fail_verify_and_a_rerun_converges(cluster):
    spec = cluster.three()
    victim = cluster.hosts[1]["name"]
    key = "/etc/kubernetes/pki/etcd/peer.key"
    cluster.ssh(victim, f"systemctl stop etcd.service; chmod 644 {key}")
    result = cluster.cli("verify", "-f", str(spec), "--json")
    assert result.returncode == 4
    records = json.loads(result.stdout)
    health = {r["target"]: r["ok"] for r in records if r["check"] == "etcd member healthy"}
    assert health[victim] is False
    assert all(ok for name, ok in health.items() if name != victim)
    files = {r["target"]: r for r in records if r["check"] == "files in place"}
    assert not files[victim]["ok"] and files[victim]["detail"] == f"{key} is 644, not 600"
    assert all(r["ok"] for name, r in files.items() if name != victim)
    assert "smoke tests failed" in result.stderr

    dry = _ok(cluster.create(spec, "--dry-run"))
    assert f"[etcd] {victim}: would etcd.service running and enabled" in dry
    assert f"[pki/place] {victim}: would place {key}" in dry
    code, state = cluster.ssh(victim, f"systemctl is-active etcd.service; stat -c %a {key}")
    assert state.split() == ["inactive", "644"]  # the dry run changed nothing

    out = _ok(cluster.create(spec, "--only", "pki/place", "--only", "etcd", "--only", "verify"))
    assert f"[pki/place] {victim}: changed: place {key}" in out
    assert f"[etcd] {victim}: changed: etcd.service running and enabled" in out
    _ok(cluster.cli("verify", "-f", str(spec)))


def test_wrong_user_and_unreachable_host_get_one_clear_message(cluster):
    wrong_user = cluster.spec("wrong-user.yaml", cluster.hosts, user="nobody")
    result = cluster.cli("create", "cluster", "-f", str(wrong_user))
    assert result.returncode == 1
    assert "cannot log in over SSH" in result.stderr and "nobody@" in result.stderr
    assert "Traceback" not in result.stderr

    ghost = dict(cluster.hosts[2], name="ghost", address=cluster.hosts[2]["address"].rsplit(".", 1)[0] + ".250")
    unreachable = cluster.spec("ghost.yaml", [*cluster.hosts, ghost])
    result = cluster.cli("create", "cluster", "-f", str(unreachable))
    assert result.returncode == 1
    assert "host ghost: cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_changed_host_key_is_refused(cluster):
    spec = cluster.three()
    third = cluster.hosts[2]["name"]
    cluster.ssh(third, "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")
    result = cluster.cli("create", "cluster", "-f", str(spec))
    assert result.returncode == 1
    assert f"host {third}: SSH host key for {cluster.address[third]} changed" in result.stderr
    # The documented way out: forget the old key, and the next run converges.
    known = cluster.state_dir / "clusters" / "e2e" / "known_hosts"
    known.write_text("".join(line for line in known.read_text().splitlines(True) if not line.startswith(cluster.address[third] + " ")))
    out = _ok(cluster.cli("create", "cluster", "-f", str(spec)))
    assert "changed:" not in out


def test_delete_removes_everything_and_is_idempotent(cluster):
    spec = cluster.three()
    dry = _ok(cluster.cli("delete", "cluster", "-f", str(spec), "--dry-run"))
    first = cluster.hosts[0]["name"]
    assert f"[etcd] {first}: would etcd.service stopped and disabled" in dry
    assert f"[pki] {first}: would remove /etc/kubernetes/pki/etcd/ca.crt" in dry
    assert dry.index("[etcd] done") < dry.index("[install] done") < dry.index("[pki] done")
    _ok(cluster.cli("delete", "cluster", "-f", str(spec), "--keep-state"))
    cluster.created = None
    for host in cluster.hosts:
        code, left = cluster.ssh(
            host["name"],
            "ls -d /opt/provisioner /etc/kubernetes /etc/etcd /var/lib/etcd /etc/systemd/system/etcd.service 2>/dev/null; "
            "pgrep -x etcd || true",
        )
        assert left.strip() == "", f"{host['name']} still has: {left}"
    again = _ok(cluster.cli("delete", "cluster", "-f", str(spec)))
    assert "nothing to change" in again
    assert not (cluster.state_dir / "clusters" / "e2e").exists()
