"""The Vagrant provider with its process boundaries faked: python-vagrant's subprocess calls,
libvirt's daemons and virsh, and the box build. The real thing runs in
tests/e2e/test_vagrant_lab.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import vagrant as python_vagrant

from provisioner.errors import ProvisionerError
from provisioner.lab import hostkeys, libvirt
from provisioner.lab import vagrant as vagrant_module
from provisioner.lab.vagrant import VagrantLab, domain_name, parse_ssh_configs
from tests.unit.spec.keys import write_private_key

SSH_CONFIG = """\
Host {name}
  HostName 10.212.{index}.{octet}
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile {dotfile}/machines/{name}/libvirt/private_key
  IdentityFile /usr/share/vagrant/keys/vagrant
  IdentitiesOnly yes
  LogLevel FATAL

"""
PROVISIONER = str(Path(sys.executable).parent / "provisioner")
REPO = Path(__file__).resolve().parents[3]


class FakeLibvirt:
    """libvirt.py's boundary: daemons, /dev/kvm, domains, pools, networks."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.pools: set[str] = set()
        self.networks: set[str] = set()
        self.stopped: list[str] = []

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(libvirt, "check_installed", lambda: None)
        monkeypatch.setattr(libvirt, "ensure_daemons", lambda: ["virtlogd", "libvirtd"])
        monkeypatch.setattr(libvirt, "fix_kvm_permissions", lambda: False)
        monkeypatch.setattr(libvirt, "probe_acceleration",
                            lambda: libvirt.choose_acceleration(set(), kvm_usable=False))
        monkeypatch.setattr(libvirt, "domain_state",
                            lambda name: "running" if name in self.running else "absent")
        monkeypatch.setattr(libvirt, "ensure_pool", lambda name, path: self.pools.add(name))
        monkeypatch.setattr(libvirt, "remove_pool", self._remove_pool)
        monkeypatch.setattr(libvirt, "remove_network", self._remove_network)
        monkeypatch.setattr(libvirt, "answering", lambda: True)
        monkeypatch.setattr(libvirt, "stop_daemons", lambda names: self.stopped.extend(names)
                            or list(names))

    def _remove_pool(self, name, path) -> bool:
        return name in self.pools and not self.pools.discard(name)

    def _remove_network(self, name) -> bool:
        return name in self.networks and not self.networks.discard(name)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Vagrantfile").write_text("# test\n")
    (root / "pyproject.toml").write_text("")
    return root


@pytest.fixture
def fake_libvirt(monkeypatch, tmp_path) -> FakeLibvirt:
    fake = FakeLibvirt()
    fake.install(monkeypatch)
    monkeypatch.setattr(vagrant_module.box, "ensure_box", lambda progress, mirror: "test/box")
    monkeypatch.setattr(vagrant_module, "ssh_banner", lambda address: True)
    monkeypatch.setattr(vagrant_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostkeys, "KEY_TYPES", ("ed25519",))  # RSA keys take seconds to make
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vagrant").write_text("#!/bin/sh\nexit 99\n")  # never run: subprocess is faked
    (bin_dir / "vagrant").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return fake


@pytest.fixture
def calls(monkeypatch, repo: Path, fake_libvirt: FakeLibvirt) -> list[dict]:
    """Every vagrant command with the LAB_* environment it ran with; `up` starts domains."""
    recorded: list[dict] = []

    def check_call(command, cwd=None, stdout=None, stderr=None, env=None):
        assert cwd == str(repo)
        recorded.append({"args": list(command[1:]), "env": env})
        names = [f"{env['LAB_NAME']}-{n}" for n in range(1, int(env["LAB_NODES"]) + 1)]
        if command[1] == "up":
            fake_libvirt.running |= {domain_name(n) for n in names}
            fake_libvirt.networks |= {f"{env['LAB_NAME']}-mgmt", f"{env['LAB_NAME']}-private"}
        if command[1] == "destroy":
            fake_libvirt.running.clear()
            fake_libvirt.networks.discard(f"{env['LAB_NAME']}-mgmt")  # vagrant leaves one
        return 0

    def check_output(command, cwd=None, env=None, stderr=None):
        recorded.append({"args": list(command[1:]), "env": env})
        assert command[1] == "ssh-config", command
        index = env["LAB_PRIVATE_PREFIX"].split(".")[2]
        return "".join(
            SSH_CONFIG.format(name=f"{env['LAB_NAME']}-{n}", index=index, octet=100 + n,
                              dotfile=env["VAGRANT_DOTFILE_PATH"])
            for n in range(1, int(env["LAB_NODES"]) + 1)).encode()

    monkeypatch.setattr(python_vagrant.subprocess, "check_call", check_call)
    monkeypatch.setattr(python_vagrant.subprocess, "check_output", check_output)
    return recorded


def test_up_runs_vagrant_with_the_labs_settings_and_writes_the_inventory(repo, calls, tmp_path):
    lab = VagrantLab("vagrant", state_root=tmp_path / "state", root=repo)
    hosts = lab.up(3)
    assert [c["args"] for c in calls] == [["up", "--provider=libvirt"], ["ssh-config"]]
    env = calls[0]["env"]
    state = lab.load()
    prefix = f"10.213.{state['subnet_index']}"
    assert {k: env[k] for k in ("LAB_NAME", "LAB_NODES", "LAB_BOX", "LAB_DRIVER", "LAB_CPU_MODE",
                                "LAB_CPU_MODEL", "LAB_POOL", "LAB_PRIVATE_PREFIX")} == {
        "LAB_NAME": "vagrant", "LAB_NODES": "3", "LAB_BOX": "test/box", "LAB_DRIVER": "qemu",
        "LAB_CPU_MODE": "custom", "LAB_CPU_MODEL": "qemu64", "LAB_POOL": "provisioner-vagrant",
        "LAB_PRIVATE_PREFIX": prefix}
    # Vagrant's machine state lives in the lab's own state, so labs share one Vagrantfile.
    assert env["VAGRANT_DOTFILE_PATH"] == str(lab.dir / "vagrant")
    assert env["LAB_BOOT_TIMEOUT"] == str(int(vagrant_module.SSH_TIMEOUT))
    dotfile = lab.dir / "vagrant" / "machines"
    assert [(h.name, h.address, h.user, h.key) for h in hosts] == [
        (f"vagrant-{n}", f"{prefix}.{10 + n}", "vagrant",
         dotfile / f"vagrant-{n}" / "libvirt" / "private_key") for n in (1, 2, 3)]
    lines = lab.inventory_path.read_text().splitlines()
    assert lines[2] == f"ssh: {{user: vagrant, port: 22, key: {hosts[0].key}}}"
    assert lines[4] == f"  - {{name: vagrant-1, address: {prefix}.11, roles: [control-plane, etcd]}}"
    assert lines[5] == (f"  - {{name: vagrant-2, address: {prefix}.12, roles: [etcd, worker], "
                        f"ssh: {{key: {hosts[1].key}}}}}")
    # The default lab's inventory is also written beside inventories/vagrant/cluster.yaml.
    assert (repo / "inventories" / "vagrant" / "hosts.yaml").read_text() == (
        lab.inventory_path.read_text())
    # Host keys to install, kept outside the lab dir so they survive `lab down`.
    assert env["LAB_HOSTKEYS"] == str(tmp_path / "state" / "lab-hostkeys" / "vagrant")
    assert (Path(env["LAB_HOSTKEYS"]) / "vagrant-3" / "ssh_host_ed25519_key").is_file()


def test_a_second_up_of_a_running_lab_changes_nothing(repo, calls, tmp_path, monkeypatch):
    lab = VagrantLab("labv", state_root=tmp_path / "state", root=repo)
    lab.up(1)
    monkeypatch.setattr(libvirt, "ensure_daemons", lambda: [])
    calls.clear()
    lab.up(1)
    assert [c["args"] for c in calls] == [["ssh-config"]]
    assert lab.changes == []
    assert not (repo / "inventories" / "vagrant" / "hosts.yaml").exists()  # not the default lab


def test_down_destroys_vms_networks_pool_and_the_daemons_it_started(repo, calls, tmp_path,
                                                                    fake_libvirt):
    lab = VagrantLab("labv", state_root=tmp_path / "state", root=repo)
    lab.up(1)
    assert lab.status() == "running"
    assert lab.down() is True
    assert calls[-1]["args"] == ["destroy", "--force"]
    assert fake_libvirt.networks == set() and fake_libvirt.pools == set()
    assert fake_libvirt.stopped == ["libvirtd", "virtlogd"]
    assert not lab.dir.exists()
    assert lab.status() == "absent"
    assert lab.down() is False
    # The hosts' SSH identities outlive the lab, for the next `lab up` of the same name.
    assert (tmp_path / "state" / "lab-hostkeys" / "labv" / "labv-1").is_dir()


def test_a_failing_vagrant_up_names_the_console_logs(repo, fake_libvirt, tmp_path, monkeypatch):
    def check_call(command, **kwargs):
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(python_vagrant.subprocess, "check_call", check_call)
    lab = VagrantLab("labv", state_root=tmp_path / "state", root=repo)
    with pytest.raises(ProvisionerError, match="vagrant up failed") as caught:
        lab.up(1)
    assert str(lab.dir / "labv-1.console.log") in caught.value.message
    assert caught.value.command.endswith("vagrant up --provider=libvirt")


def test_a_vm_not_answering_ssh_is_reported_with_its_console_log(repo, calls, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(vagrant_module, "ssh_banner", lambda address: False)
    monkeypatch.setattr(vagrant_module, "SSH_TIMEOUT", 0.0)
    lab = VagrantLab("labv", state_root=tmp_path / "state", root=repo)
    with pytest.raises(ProvisionerError, match="labv-1 did not answer SSH") as caught:
        lab.up(1)
    assert str(lab.dir / "labv-1.console.log") in caught.value.message


def test_the_written_inventory_makes_the_repo_cluster_spec_valid(repo, calls, tmp_path):
    from provisioner.spec import validate_cluster

    lab = VagrantLab("vagrant", state_root=tmp_path / "state", root=repo)
    for number in (1, 2, 3):
        key = lab.dir / "vagrant" / "machines" / f"vagrant-{number}" / "libvirt" / "private_key"
        key.parent.mkdir(parents=True)
        write_private_key(key)
    spec_file = repo / "inventories" / "vagrant" / "cluster.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text((REPO / "inventories" / "vagrant" / "cluster.yaml").read_text())
    hosts = lab.up(3)
    spec, errors, _ = validate_cluster(str(spec_file))
    assert errors == []
    assert [(h.name, h.address, h.ssh.user) for h in spec.hosts] == [
        (h.name, h.address, "vagrant") for h in hosts]


def test_cli_without_vagrant_prints_an_error_and_no_traceback(repo, tmp_path):
    # A real CLI process: the CLI monkey-patches sockets for gevent, which must not leak into
    # this test session.
    env = dict(os.environ, PATH=str(tmp_path / "nowhere"),
               PROVISIONER_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run([PROVISIONER, "lab", "up", "--provider", "vagrant"], cwd=repo,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "ERROR: the Vagrant lab needs " in result.stderr
    assert "scripts/install-deps.sh" in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_ssh_configs_reads_every_host_and_the_first_identity():
    text = SSH_CONFIG.format(name="a-1", index=0, octet=1, dotfile="/d") + SSH_CONFIG.format(
        name="a-2", index=0, octet=2, dotfile="/d")
    options = parse_ssh_configs(text)
    assert list(options) == ["a-1", "a-2"]
    assert options["a-2"]["IdentityFile"] == "/d/machines/a-2/libvirt/private_key"
    assert options["a-1"]["User"] == "vagrant"


def test_the_lab_state_records_what_vagrant_needs_to_find_it_again(repo, calls, tmp_path):
    lab = VagrantLab("labv", state_root=tmp_path / "state", root=repo)
    lab.up(1)
    state = json.loads((lab.dir / "lab.json").read_text())
    assert {k: state[k] for k in ("name", "provider", "root", "nodes", "driver")} == {
        "name": "labv", "provider": "vagrant", "root": str(repo), "nodes": 1, "driver": "qemu"}
    assert state["daemons"] == ["libvirtd", "virtlogd"]
