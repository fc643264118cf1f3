"""The cgroup v2 device program (devices_bpf), attached to a real cgroup of the unified hierarchy
(present beside v1 on hybrid hosts): processes in it may open and make only the allowed nodes."""

import os
import stat
import uuid

import pytest

from provisioner.components.runtime.container import cgroups, devices_bpf


def _cgroup2_mount() -> str:
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    pytest.fail("no cgroup2 hierarchy mounted: the device program needs one")


@pytest.fixture
def device_cgroup():
    path = os.path.join(_cgroup2_mount(), f"prt-devtest-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    yield path
    os.rmdir(path)


def _in_cgroup(path: str, action) -> str:
    """What `action()` returns (or the error it raises), run by a child moved into `path`."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as procs:
                procs.write("0")
            result = action()
        except OSError as exc:
            result = exc.strerror
        os.write(write_fd, str(result).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    return result


def _open(path: str, flags: int = os.O_RDONLY):
    def action():
        os.close(os.open(path, flags))
        return "ok"
    return action


def _mknod(path: str, major: int, minor: int, kind: int = stat.S_IFCHR):
    def action():
        os.mknod(path, 0o600 | kind, os.makedev(major, minor))
        return "ok"
    return action


def test_the_standard_nodes_work_and_others_are_refused(device_cgroup, tmp_path):
    devices_bpf.attach(device_cgroup, cgroups.DEVICE_ALLOWLIST)
    assert _in_cgroup(device_cgroup, _open("/dev/null", os.O_RDWR)) == "ok"
    assert _in_cgroup(device_cgroup, _open("/dev/urandom")) == "ok"
    assert _in_cgroup(device_cgroup, _mknod(str(tmp_path / "null"), 1, 3)) == "ok"
    # made outside the cgroup: a block device and /dev/mem's numbers
    os.mknod(tmp_path / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    os.mknod(tmp_path / "mem", 0o600 | stat.S_IFCHR, os.makedev(1, 1))
    assert _in_cgroup(device_cgroup, _open(str(tmp_path / "disk"))) == "Operation not permitted"
    assert _in_cgroup(device_cgroup, _open(str(tmp_path / "mem"))) == "Operation not permitted"
    assert _in_cgroup(device_cgroup, _mknod(str(tmp_path / "mem2"), 1, 1)) == \
        "Operation not permitted"
    # outside the cgroup the same node opens: the program is what refused it
    os.close(os.open(tmp_path / "disk", os.O_RDONLY))


def test_access_letters_are_honoured(device_cgroup, tmp_path):
    devices_bpf.attach(device_cgroup, ["c 1:5 r", "c 136:* rw"])
    assert _in_cgroup(device_cgroup, _open("/dev/zero")) == "ok"
    assert _in_cgroup(device_cgroup, _open("/dev/zero", os.O_WRONLY)) == "Operation not permitted"
    assert _in_cgroup(device_cgroup, _mknod(str(tmp_path / "zero"), 1, 5)) == \
        "Operation not permitted"
    assert _in_cgroup(device_cgroup, _open("/dev/null")) == "Operation not permitted"
