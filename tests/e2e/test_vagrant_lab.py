"""End to end: the Vagrant lab boots a real VM on libvirt/QEMU from the box this project builds.

One small VM (1 vCPU, 768 MiB; emulated where this machine has no hardware virtualization) is
brought up with the real CLI, reached over SSH with nothing but what its inventory says, and
destroyed; the teardown checks libvirt holds nothing of the lab afterwards. The box is built on
first use (about 1.5 minutes) and cached under /var/cache/provisioner/lab.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import yaml

from provisioner.lab import hostkeys, libvirt
from provisioner.lab.vagrant import POOL_ROOT, VagrantLab, domain_name

pytestmark = pytest.mark.e2e

PROVISIONER = str(Path(sys.executable).parent / "provisioner")
REPO = Path(__file__).resolve().parents[2]
LAB_NAME = "e2ev"


def _cli(state_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVISIONER_STATE_DIR": str(state_root),
           "PROVISIONER_LAB_VM_MEMORY": "768", "PROVISIONER_LAB_VM_CPUS": "1"}
    return subprocess.run([PROVISIONER, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def _virsh_knows(*args: str) -> bool:
    return subprocess.run(["virsh", "-c", libvirt.URI, *args], capture_output=True).returncode == 0


def _libvirt_leftovers(lab: VagrantLab) -> list[str]:
    if not libvirt.answering():
        return []  # the daemons are gone, and with them anything they ran
    left = [d for d in libvirt.domains() if d.startswith(domain_name(f"{LAB_NAME}-"))]
    left += [n for n in lab.networks() if _virsh_knows("net-info", n)]
    left += [lab.pool] if _virsh_knows("pool-info", lab.pool) else []
    return left


@pytest.fixture(scope="module")
def vagrant_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VagrantLab]:
    state_root = tmp_path_factory.mktemp("vagrant-state")
    lab = VagrantLab(LAB_NAME, state_root=state_root)
    try:
        result = _cli(state_root, "lab", "up", "--provider", "vagrant", "--name", LAB_NAME,
                      "--nodes", "1")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield lab
    finally:
        down = _cli(state_root, "lab", "down", "--name", LAB_NAME)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not lab.dir.exists()
    assert not (POOL_ROOT / lab.pool).exists()
    assert _libvirt_leftovers(lab) == []


def _ssh_from_inventory(lab: VagrantLab, command: str) -> tuple[int, str, str]:
    """Run a command on the lab's only host with the inventory's address, user and key,
    accepting only the host key the lab keeps for that host (the one that survives rebuilds)."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    host = inventory["hosts"][0]
    ssh = {**inventory["ssh"], **host.get("ssh", {})}
    kept = (hostkeys.store(lab.state_root, LAB_NAME) / host["name"] /
            "ssh_host_ed25519_key.pub").read_text().split()
    client = paramiko.SSHClient()
    client.get_host_keys().add(host["address"], kept[0],
                               paramiko.Ed25519Key(data=base64.b64decode(kept[1])))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host["address"], port=ssh["port"], username=ssh["user"],
                   key_filename=ssh["key"], allow_agent=False, look_for_keys=False, timeout=20)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=180)
        out, err = stdout.read().decode(), stderr.read().decode()
        return stdout.channel.recv_exit_status(), out, err
    finally:
        client.close()


def test_a_vagrant_vm_boots_to_running_and_answers_through_its_inventory(vagrant_lab):
    assert vagrant_lab.status() == "running"
    code, out, err = _ssh_from_inventory(
        vagrant_lab, "hostname; sudo -n systemctl is-system-running --wait; "
                     "systemctl --failed --no-legend --plain")
    lines = out.split()
    assert lines[0] == f"{LAB_NAME}-1", out + err
    assert lines[1] == "running", f"VM not running cleanly:\n{out}{err}"
    inventory = yaml.safe_load(vagrant_lab.inventory_path.read_text())
    assert inventory["hosts"][0]["roles"] == ["control-plane", "etcd", "worker"]
    assert inventory["ssh"]["user"] == "vagrant"
