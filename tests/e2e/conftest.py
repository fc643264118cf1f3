"""Shared end-to-end fixtures: one local lab of real systemd-nspawn hosts per test session.

Fixtures (all session-scoped; tests that use them are marked `@pytest.mark.e2e`):

- `lab`: a `provisioner.lab.Lab` named `e2e`, already up with 3 hosts (`e2e-1` control-plane+etcd,
  `e2e-2` and `e2e-3` etcd+worker). Its state lives in a session tmp dir, and
  `PROVISIONER_STATE_DIR` points there for the whole session, so `provisioner` commands run by
  tests find it. Useful attributes: `lab.inventory_path` (inventory YAML to give
  `provisioner create cluster`), `lab.key_path` (root's SSH key on every host), `lab.hosts()`.
- `lab_hosts`: `lab.hosts()`, a list of `LabHost(name, address, roles)`.
- `lab_ssh`: a function `lab_ssh(host_name, command, timeout=60) -> (exit_code, stdout, stderr)`
  running a command as root on a lab host over SSH (paramiko).

The cached Debian root under /var/cache/provisioner/lab is shared and kept between sessions
(built on first use, ~1 minute). At session end the lab is torn down and the teardown asserts
nothing is left: no mounts under its state dir, no bridge, no nspawn processes, no cgroups.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from provisioner.lab import Lab, LabHost
from provisioner.lab.machine import CGROUP_ROOT, mounts_under
from provisioner.lab.network import bridge_name, link_exists

# Overridable so two people (or CI jobs) on one machine do not share a lab.
SHARED_LAB_NAME = os.environ.get("PROVISIONER_E2E_LAB", "e2e")


def lab_processes(lab_name: str) -> list[int]:
    """Live (non-zombie) systemd-nspawn processes of a lab's hosts."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not cmdline[0].endswith(b"systemd-nspawn"):
            continue
        for arg in cmdline:
            prefix = f"--machine={lab_name}-".encode()
            if arg.startswith(prefix) and arg[len(prefix):].isdigit():
                found.append(int(proc.name))
    return found


def assert_lab_gone(lab: Lab, subnet_index: int) -> None:
    """Everything `lab down` must remove is gone."""
    assert not lab.dir.exists(), f"{lab.dir} still exists"
    assert mounts_under(lab.dir) == [], "mounts left under the lab's state dir"
    assert not link_exists(bridge_name(subnet_index)), "lab bridge left behind"
    assert lab_processes(lab.name) == [], "nspawn processes left behind"
    leftovers = list(CGROUP_ROOT.glob(f"*/provisioner-lab/{lab.name}"))
    assert leftovers == [], f"cgroups left behind: {leftovers}"


def ssh_run(lab: Lab, address: str, command: str, timeout: float = 60) -> tuple[int, str, str]:
    client = paramiko.SSHClient()
    # Host keys are irrelevant for these lab checks; the provisioner itself pins them.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(address, username="root", key_filename=str(lab.key_path),
                   allow_agent=False, look_for_keys=False, timeout=15)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode()
        err = stderr.read().decode()
        return stdout.channel.recv_exit_status(), out, err
    finally:
        client.close()


@pytest.fixture(scope="session")
def lab_state_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lab-state")
    previous = os.environ.get("PROVISIONER_STATE_DIR")
    os.environ["PROVISIONER_STATE_DIR"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("PROVISIONER_STATE_DIR", None)
    else:
        os.environ["PROVISIONER_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def lab(lab_state_root: Path) -> Iterator[Lab]:
    the_lab = Lab(SHARED_LAB_NAME, state_root=lab_state_root, progress=print)
    try:
        the_lab.up(3)
        subnet_index = the_lab.load()["subnet_index"]
        yield the_lab
    finally:
        the_lab.down()
    assert_lab_gone(the_lab, subnet_index)


@pytest.fixture(scope="session")
def lab_hosts(lab: Lab) -> list[LabHost]:
    return lab.hosts()


@pytest.fixture(scope="session")
def lab_ssh(lab: Lab) -> Callable[..., tuple[int, str, str]]:
    addresses = {host.name: host.address for host in lab.hosts()}

    def run(host_name: str, command: str, timeout: float = 60) -> tuple[int, str, str]:
        return ssh_run(lab, addresses[host_name], command, timeout)

    return run
