"""The Vagrant provider, with python-vagrant's subprocess calls faked.

No hypervisor or vagrant binary is needed: a stub `vagrant` on PATH satisfies python-vagrant's
lookup, and `subprocess.check_call`/`check_output` as python-vagrant calls them are replaced by
fakes that record the command and answer `ssh-config` with recorded output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import vagrant as python_vagrant

from provisioner.errors import ProvisionerError
from provisioner.lab.vagrant import VagrantLab, parse_ssh_config
from tests.unit.spec.keys import write_private_key

SSH_CONFIG = """\
Host {name}
  HostName 127.0.0.1
  User vagrant
  Port {port}
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile "{root}/.vagrant/machines/{name}/virtualbox/private_key"
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

"""
PROVISIONER = str(Path(sys.executable).parent / "provisioner")
REPO = Path(__file__).resolve().parents[3]
PORTS = {"vagrant-1": 2222, "vagrant-2": 2200, "vagrant-3": 2201}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Vagrantfile").write_text("# test\n")
    (root / "pyproject.toml").write_text("")
    return root


@pytest.fixture
def stub_binary(tmp_path: Path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "vagrant"
    stub.write_text("#!/bin/sh\nexit 99\n")  # never run: subprocess is faked
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return stub


@pytest.fixture
def calls(monkeypatch, repo: Path) -> list[list[str]]:
    recorded: list[list[str]] = []

    def check_call(command, cwd=None, stdout=None, stderr=None, env=None):
        recorded.append(list(command[1:]))
        assert cwd == str(repo)
        return 0

    def check_output(command, cwd=None, env=None, stderr=None):
        recorded.append(list(command[1:]))
        if command[1] == "ssh-config":
            name = command[2]
            return SSH_CONFIG.format(name=name, port=PORTS[name], root=repo).encode()
        raise AssertionError(f"unexpected vagrant command {command}")

    monkeypatch.setattr(python_vagrant.subprocess, "check_call", check_call)
    monkeypatch.setattr(python_vagrant.subprocess, "check_output", check_output)
    return recorded


def test_up_runs_vagrant_and_writes_the_inventory_from_ssh_config(
        repo, stub_binary, calls, tmp_path):
    lab = VagrantLab(root=repo, state_root=tmp_path / "state")
    hosts = lab.up(3)
    assert calls[0] == ["up"]
    assert calls[1:] == [["ssh-config", "vagrant-1"], ["ssh-config", "vagrant-2"],
                         ["ssh-config", "vagrant-3"]]
    # Each machine on its own private address (ssh-config's 127.0.0.1 forwards are not used).
    assert [(h.name, h.address, h.port, h.user) for h in hosts] == [
        ("vagrant-1", "192.168.56.11", 22, "vagrant"),
        ("vagrant-2", "192.168.56.12", 22, "vagrant"),
        ("vagrant-3", "192.168.56.13", 22, "vagrant")]
    key1 = f"{repo}/.vagrant/machines/vagrant-1/virtualbox/private_key"
    key2 = f"{repo}/.vagrant/machines/vagrant-2/virtualbox/private_key"
    text = lab.inventory_path.read_text()
    assert text.splitlines()[:5] == [
        "apiVersion: provisioner.dev/v1alpha1",
        "kind: Inventory",
        f"ssh: {{user: vagrant, port: 22, key: {key1}}}",
        "hosts:",
        "  - {name: vagrant-1, address: 192.168.56.11, roles: [control-plane, etcd]}",
    ]
    assert text.splitlines()[5] == (
        "  - {name: vagrant-2, address: 192.168.56.12, roles: [etcd, worker], "
        f"ssh: {{key: {key2}}}}}"
    )
    assert (repo / "inventories" / "vagrant" / "hosts.yaml").read_text() == text
    assert lab.load() == {"name": "vagrant", "provider": "vagrant", "root": str(repo),
                          "nodes": 3}


def test_the_written_inventory_makes_the_repo_cluster_spec_valid(repo, stub_binary, calls, tmp_path):
    from provisioner.spec import validate_cluster

    for number in (1, 2, 3):
        key = repo / ".vagrant" / "machines" / f"vagrant-{number}" / "virtualbox" / "private_key"
        key.parent.mkdir(parents=True)
        write_private_key(key)
    spec_file = repo / "inventories" / "vagrant" / "cluster.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text((REPO / "inventories" / "vagrant" / "cluster.yaml").read_text())
    VagrantLab(root=repo, state_root=tmp_path / "state").up(3)
    spec, errors, _ = validate_cluster(str(spec_file))
    assert errors == []
    assert [(h.name, h.address, h.ssh.user) for h in spec.hosts] == [
        ("vagrant-1", "192.168.56.11", "vagrant"), ("vagrant-2", "192.168.56.12", "vagrant"),
        ("vagrant-3", "192.168.56.13", "vagrant")]


def test_down_destroys_the_machines_and_forgets_the_lab(repo, stub_binary, calls, tmp_path):
    lab = VagrantLab(root=repo, state_root=tmp_path / "state")
    lab.up(1)
    assert lab.down() is True
    assert calls[-1] == ["destroy", "--force"]
    assert not lab.dir.exists()
    assert lab.down() is False


def test_a_missing_vagrant_binary_is_a_clear_error(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ProvisionerError, match="vagrant binary is not installed"):
        VagrantLab(root=repo, state_root=tmp_path / "state").up()


def test_a_failing_vagrant_up_is_reported_with_its_command(repo, stub_binary, tmp_path,
                                                            monkeypatch):
    def check_call(command, **kwargs):
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(python_vagrant.subprocess, "check_call", check_call)
    with pytest.raises(ProvisionerError, match="vagrant up failed") as caught:
        VagrantLab(root=repo, state_root=tmp_path / "state").up()
    assert caught.value.command.endswith("vagrant up")


def test_cli_without_vagrant_prints_an_error_and_no_traceback(repo, tmp_path):
    # A real CLI process: the CLI monkey-patches sockets for gevent, which must not leak into
    # this test session.
    env = dict(os.environ, PATH=str(tmp_path / "nowhere"), PROVISIONER_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run([PROVISIONER, "lab", "up", "--provider", "vagrant"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "ERROR: the vagrant binary is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_ssh_config_reads_the_first_host_block():
    text = SSH_CONFIG.format(name="a", port=1, root="/r") + "Host b\n  Port 2\n"
    options = parse_ssh_config(text)
    assert options["Port"] == "1"
    assert options["IdentityFile"] == "/r/.vagrant/machines/a/virtualbox/private_key"
