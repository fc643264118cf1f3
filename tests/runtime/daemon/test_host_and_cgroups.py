"""The daemon with the host's network, on a host whose cgroups are read-only, with bridge
containers (whose netns helper must not look like the daemon being stopped), and the dates of
its bootstrap images."""

from __future__ import annotations

import os
import shutil

import pytest

from ..readonly_cgroups import READ_ONLY_CGROUPS_PREAMBLE
from .conftest import CGROUP_PARENT, CLI, Daemon


def _default_route_interface() -> str:
    with open("/proc/net/route") as routes:
        for line in routes.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return fields[0]
    raise AssertionError("this host has no default route")


def test_network_host_sees_the_host_interfaces(daemon, remove_after):
    remove_after.append("on-host-net")
    result = daemon.cli("run", "--name", "on-host-net", "--network", "host", "busybox",
                        "cat", "/proc/net/dev")
    assert result.returncode == 0, result.stderr
    names = {line.split(":")[0].strip() for line in result.stdout.splitlines()[2:]}
    assert {"lo", _default_route_interface()} <= names


def test_bridge_containers_do_not_make_the_daemon_log_sigterm(daemon, remove_after):
    remove_after.extend(["bridged-1", "bridged-2"])
    before = len(daemon.log())
    for name in ("bridged-1", "bridged-2"):
        assert daemon.cli("run", "--name", name, "busybox", "true").returncode == 0
        assert daemon.cli("rm", name).returncode == 0
    assert "SIGTERM" not in daemon.log()[before:]


def test_images_made_from_host_files_show_no_age(daemon):
    listing = daemon.cli("images").stdout.splitlines()
    busybox = [line for line in listing if line.startswith("busybox ")]
    assert busybox and busybox[0].split()[3] == "N/A", listing
    assert "weeks ago" not in busybox[0]


READ_ONLY_CGROUPS_DAEMON = READ_ONLY_CGROUPS_PREAMBLE + """
import sys
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


class ReadOnlyCgroupsDaemon(Daemon):
    def command(self) -> list[str]:
        return ["-c", READ_ONLY_CGROUPS_DAEMON, *CLI[1:], "daemon", "--root", self.root,
                "--socket", self.socket, "--bridge", "prtd9", "--subnet", "10.198.9.0/24",
                "--cgroup-parent", CGROUP_PARENT, "--no-bootstrap-images"]


@pytest.fixture
def read_only_cgroups_daemon(tmp_path):
    daemon = ReadOnlyCgroupsDaemon(str(tmp_path / "root"), str(tmp_path / "ro.sock"))
    daemon.start()
    yield daemon
    try:
        for container in daemon.client.containers(all=True):
            daemon.client.remove(container["Id"], force=True)
    finally:
        daemon.stop()
        shutil.rmtree(tmp_path / "root", ignore_errors=True)


def test_unwritable_cgroups_show_as_a_warning_in_inspect(read_only_cgroups_daemon, daemon,
                                                         tmp_path):
    ro = read_only_cgroups_daemon
    image = tmp_path / "busybox.tar"
    assert daemon.cli("save", "-o", str(image), "busybox").returncode == 0
    assert ro.cli("load", "-i", str(image)).returncode == 0
    result = ro.cli("run", "-d", "--name", "unlimited", "--network", "none", "-m", "64m",
                    "busybox", "echo", "ran")
    assert result.returncode == 0, result.stderr
    assert ro.cli("wait", "unlimited").stdout == "0\n"
    assert ro.cli("logs", "unlimited").stdout == "ran\n"
    warnings = ro.inspect("unlimited")["Warnings"]
    assert len(warnings) == 1 and "limits are not applied" in warnings[0]
    assert "Read-only file system" in warnings[0]
    assert os.path.exists(ro.log_path) and "limits are not applied" in ro.log()
