"""One lab host's files and its nspawn command line (nothing is mounted or started)."""

from __future__ import annotations

import os
from pathlib import Path

from provisioner.lab.machine import Machine


def _machine(tmp_path: Path) -> Machine:
    return Machine(lab="lab", name="lab-2", address="10.213.0.12", gateway="10.213.0.1",
                   bridge="plab0", host_dir=tmp_path / "hosts" / "lab-2",
                   rootfs=Path("/var/cache/provisioner/lab/root"),
                   log_path=tmp_path / "lab-2.log")


def test_prepare_writes_the_host_identity_into_the_upper_layer(tmp_path):
    machine = _machine(tmp_path)
    machine.prepare("ssh-ed25519 AAAA lab")
    etc = machine.upper / "etc"
    assert (etc / "hostname").read_text() == "lab-2\n"
    assert len((etc / "machine-id").read_text().strip()) == 32
    network = (etc / "systemd/network/10-lab-host0.network").read_text()
    assert "Name=host0" in network
    assert "Address=10.213.0.12/24" in network and "Gateway=10.213.0.1" in network
    keys = machine.upper / "root/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA lab\n"
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert oct((machine.upper / "root/.ssh").stat().st_mode & 0o777) == "0o700"
    for directory in (machine.work, machine.root, machine.data):
        assert directory.is_dir()


def test_prepare_again_keeps_the_machine_id(tmp_path):
    machine = _machine(tmp_path)
    machine.prepare("key")
    first = (machine.upper / "etc/machine-id").read_text()
    machine.prepare("key")
    assert (machine.upper / "etc/machine-id").read_text() == first


def test_nspawn_command_boots_detached_from_machined_on_the_lab_bridge(tmp_path):
    command = _machine(tmp_path).nspawn_command()
    assert command[0] == "systemd-nspawn"
    for flag in ("--boot", "--machine=lab-2", "--hostname=lab-2", "--register=no",
                 "--keep-unit", "--network-bridge=plab0", "--capability=all",
                 f"--directory={tmp_path}/hosts/lab-2/root",
                 f"--bind={tmp_path}/hosts/lab-2/data:/var/lib/provisioner"):
        assert flag in command


def test_a_missing_or_foreign_pid_is_not_running(tmp_path):
    machine = _machine(tmp_path)
    assert machine.pid() is None
    machine.host_dir.mkdir(parents=True)
    machine.pid_file.write_text("garbage")
    assert machine.pid() is None
    machine.pid_file.write_text(f"{os.getpid()}\n")  # pytest itself, not an nspawn
    assert machine.is_running() is False


def test_cgroup_path_is_per_lab_and_host(tmp_path):
    assert _machine(tmp_path).cgroup_path == "provisioner-lab/lab/lab-2"
