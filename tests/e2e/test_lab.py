"""End-to-end: the local nspawn lab boots real hosts that behave like servers.

Uses the shared session lab (`lab` fixture, 3 hosts) for read-only checks, and a small lab of
its own for what disturbs hosts (a crashed host, growing, `down`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.engine.hostkeys import pin_host_key
from provisioner.lab import Lab
from provisioner.lab.rootfs import rootfs_path
from tests.e2e.conftest import assert_lab_gone, lab_processes, ssh_run

pytestmark = pytest.mark.e2e


def test_each_host_answers_ssh_with_its_own_hostname(lab, lab_hosts, lab_ssh):
    assert [h.name for h in lab_hosts] == ["e2e-1", "e2e-2", "e2e-3"]
    for host in lab_hosts:
        code, out, _ = lab_ssh(host.name, "hostname")
        assert (code, out.strip()) == (0, host.name)


def test_systemd_boots_every_host_to_running(lab_hosts, lab_ssh):
    # `degraded` (a failed unit) is a failure: a lab host must boot as cleanly as a server.
    for host in lab_hosts:
        code, out, _ = lab_ssh(host.name, "systemctl is-system-running --wait", timeout=120)
        _, failed, _ = lab_ssh(host.name, "systemctl --failed --no-legend --plain")
        assert out.strip() == "running", f"{host.name}: {out.strip()}; failed units:\n{failed}"


def test_hosts_reach_each_other_by_address(lab_hosts, lab_ssh):
    for source in lab_hosts:
        for target in lab_hosts:
            if target is source:
                continue
            code, out, err = lab_ssh(source.name, f"ping -c1 -W2 {target.address}")
            assert code == 0, f"{source.name} -> {target.address}: {out}{err}"


def test_hosts_have_their_own_ssh_host_keys_and_machine_ids(lab_hosts, lab_ssh):
    keys, ids = set(), set()
    for host in lab_hosts:
        _, key, _ = lab_ssh(host.name, "cat /etc/ssh/ssh_host_ed25519_key.pub")
        _, machine_id, _ = lab_ssh(host.name, "cat /etc/machine-id")
        keys.add(key.split()[1])
        ids.add(machine_id.strip())
    assert len(keys) == len(lab_hosts) and len(ids) == len(lab_hosts)
    assert not list((rootfs_path() / "etc/ssh").glob("ssh_host_*")), "cache holds host keys"


def test_a_memory_limited_cgroup_can_be_created_inside_a_host(lab_hosts, lab_ssh):
    script = (
        "set -e; cg=/sys/fs/cgroup/memory/e2e-limit; mkdir $cg; "
        "echo 67108864 > $cg/memory.limit_in_bytes; "
        "sh -c \"echo \\$\\$ > $cg/cgroup.procs; cat /proc/self/cgroup\"; "
        "cat $cg/memory.limit_in_bytes; rmdir $cg"
    )
    code, out, err = lab_ssh(lab_hosts[0].name, script)
    assert code == 0, err
    assert "memory:/e2e-limit" in out
    assert "67108864" in out


def test_hosts_can_nest_namespaces_and_overlays(lab_hosts, lab_ssh):
    # What a container runtime does: new namespaces, an overlay whose upper layer is on the
    # non-overlay data dir, a veth pair, iptables.
    script = (
        "set -e; d=/var/lib/provisioner/e2e-ovl; mkdir -p $d/l $d/u $d/w $d/m; "
        "mount -t overlay ovl -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m; umount $d/m; "
        "rm -rf $d; unshare -m -n -p -u -i -f true; "
        "ip link add e2e-a type veth peer name e2e-b; ip link del e2e-a; "
        "iptables -t nat -L -n >/dev/null; test -c /dev/net/tun"
    )
    code, out, err = lab_ssh(lab_hosts[1].name, script)
    assert code == 0, out + err


def test_inventory_lists_every_host_with_roles_and_key(lab):
    text = lab.inventory_path.read_text()
    assert text.startswith("apiVersion: provisioner.dev/v1alpha1\nkind: Inventory\n")
    assert f"ssh: {{user: root, port: 22, key: {lab.key_path}}}" in text
    assert "  - {name: e2e-1, address: " in text
    assert oct(lab.key_path.stat().st_mode & 0o777) == "0o600"


def test_lab_up_again_changes_nothing(lab):
    result = subprocess.run(
        [sys.executable, "-c", "from provisioner.cli import main; main()",
         "lab", "up", "--name", lab.name],
        capture_output=True, text=True, env={**os.environ,
                                             "PROVISIONER_STATE_DIR": str(lab.state_root)},
    )
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stdout
    assert lab.status() == "running"


@pytest.fixture(scope="module")
def own_lab(lab_state_root: Path):
    """A second, 1-host lab beside the shared one: it gets crashed, grown and taken down."""
    the_lab = Lab("e2e-own", state_root=lab_state_root, progress=print)
    yield the_lab
    the_lab.down()


def test_two_labs_coexist_on_their_own_subnets(lab, own_lab):
    own_lab.up(1)
    assert own_lab.subnet() != lab.subnet()
    host = own_lab.hosts()[0]
    assert host.roles == ("control-plane", "etcd", "worker")
    code, out, _ = ssh_run(own_lab, host.address, "hostname")
    assert out.strip() == "e2e-own-1"


def test_a_crashed_host_is_restarted_and_a_grown_lab_adds_hosts(own_lab):
    own_lab.up(1)
    machine = own_lab.machines()[0]
    os.kill(machine.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while machine.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert own_lab.status() == "stopped"
    hosts = own_lab.up(2)
    assert "restarted e2e-own-1 (%s)" % machine.address in own_lab.changes
    assert [h.roles for h in hosts] == [("control-plane", "etcd"), ("worker",)]
    assert own_lab.status() == "running"
    for host in hosts:
        code, out, _ = ssh_run(own_lab, host.address, "hostname")
        assert out.strip() == host.name


def test_a_rebuilt_lab_keeps_its_addresses_and_ssh_host_keys(own_lab, tmp_path):
    # `make cluster`, `make clean-lab`, `make cluster`: the cluster's pinned keys still match.
    own_lab.up(1)
    host = own_lab.hosts()[0]
    known_hosts = tmp_path / "known_hosts"
    assert pin_host_key(host.name, host.address, 22, known_hosts) is True
    own_lab.down()
    assert own_lab.up(1)[0].address == host.address
    assert pin_host_key(host.name, host.address, 22, known_hosts) is False  # same key, no error


def test_lab_down_leaves_nothing_and_is_idempotent(own_lab):
    own_lab.up(1)
    index = own_lab.load()["subnet_index"]
    assert lab_processes(own_lab.name)
    assert own_lab.down() is True
    assert_lab_gone(own_lab, index)
    assert own_lab.down() is False
