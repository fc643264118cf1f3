"""What a process sees inside a container: its own PID 1, hostname, network, filesystem, /proc
and /dev, a reduced capability set, no_new_privs, and the user it was asked to run as."""

import os
import stat
import subprocess
import sys

import pytest

from provisioner.components.runtime.container import caps, cgroups
from provisioner.components.runtime.container import syscalls as sc
from provisioner.components.runtime.container.spec import Mount

from .conftest import read_log, run_to_exit


def test_pid1_is_the_entrypoint_and_no_host_process_is_visible(make_spec):
    # the glob expands in PID 1 itself, before any child exists
    script = "echo /proc/[0-9]*; tr '\\0' ' ' < /proc/1/cmdline; exit 0"
    spec = make_spec(["sh", "-c", script])
    final = run_to_exit(spec)
    assert final.exit_code == 0
    assert read_log(spec).splitlines() == ["/proc/1", f"sh -c {script} "]


def test_hostname_and_network_are_its_own(make_spec):
    spec = make_spec(["sh", "-c", "hostname; cat /proc/net/dev"], hostname="web-1")
    run_to_exit(spec)
    lines = read_log(spec).splitlines()
    assert lines[0] == "web-1"
    interfaces = [line.split(":")[0].strip() for line in lines[1:] if ":" in line]
    assert interfaces == ["lo"]
    assert os.uname().nodename != "web-1"


def test_files_written_in_one_container_are_absent_from_another(make_spec, busybox_layer):
    writer = make_spec(["sh", "-c", "echo secret > /etc/written && cat /etc/written"])
    run_to_exit(writer)
    assert read_log(writer) == "secret"
    reader = make_spec(["sh", "-c", "cat /etc/written || echo absent"])
    run_to_exit(reader)
    assert "absent" in read_log(reader)
    assert not os.path.exists(os.path.join(busybox_layer, "etc", "written"))
    assert os.path.exists(os.path.join(writer.state_dir, "upper", "etc", "written"))


def test_masked_and_read_only_proc_paths(make_spec):
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
              if os.path.exists(p)]
    assert masked, "the host kernel shows none of the masked /proc files"
    script = "; ".join(f"echo {p}=$(wc -c < {p})" for p in masked)
    script += "; echo 1 > /proc/sys/kernel/domainname && echo wrote-proc-sys; ls /sys/firmware"
    spec = make_spec(["sh", "-c", script])
    run_to_exit(spec)
    output = read_log(spec)
    for path in masked:
        assert f"{path}=0" in output
    assert "Read-only file system" in output
    assert "wrote-proc-sys" not in output


def test_dev_holds_the_standard_nodes_and_sys_is_read_only(make_spec):
    spec = make_spec(["sh", "-c", "ls /dev; head -c 4 /dev/zero | wc -c; "
                                  "touch /sys/x 2>&1; readlink /dev/ptmx"])
    run_to_exit(spec)
    output = read_log(spec).splitlines()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
                 "fd", "stdin", "stdout", "stderr", "ptmx"):
        assert name in output
    assert "4" in output
    assert any("Read-only file system" in line for line in output)
    assert "pts/ptmx" in output


def test_capabilities_are_reduced_and_no_new_privs_is_set(make_spec):
    spec = make_spec(["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"])
    run_to_exit(spec)
    fields = dict(line.split(":\t") for line in read_log(spec).splitlines())
    expected = caps.mask_of(caps.DEFAULT_CAPABILITIES)
    assert int(fields["CapEff"], 16) == expected
    assert int(fields["CapBnd"], 16) == expected
    assert not int(fields["CapEff"], 16) & (1 << caps.CAP_NUMBERS["SYS_ADMIN"])
    assert fields["NoNewPrivs"] == "1"


def test_explicit_capabilities_apply_to_a_non_root_user(make_spec):
    spec = make_spec(["sh", "-c", "grep -E '^Cap(Eff|Amb)' /proc/self/status"],
                     user="nobody", capabilities=["NET_BIND_SERVICE"])
    run_to_exit(spec)
    fields = dict(line.split(":\t") for line in read_log(spec).splitlines())
    assert int(fields["CapEff"], 16) == 1 << caps.CAP_NUMBERS["NET_BIND_SERVICE"]
    assert int(fields["CapAmb"], 16) == 1 << caps.CAP_NUMBERS["NET_BIND_SERVICE"]


def test_user_from_the_containers_passwd_with_groups_home_and_cwd(make_spec):
    spec = make_spec(["sh", "-c", "id; echo $HOME; pwd; grep CapEff /proc/self/status"],
                     user="nobody", cwd="/tmp")
    run_to_exit(spec)
    lines = read_log(spec).splitlines()
    assert lines[0] == "uid=65534(nobody) gid=65534(nogroup) groups=50(staff),65534(nogroup)"
    assert lines[1:3] == ["/home/nobody", "/tmp"]
    assert lines[3] == "CapEff:\t0000000000000000"


def test_numeric_user_and_group(make_spec):
    spec = make_spec(["id"], user="1234:50")
    run_to_exit(spec)
    assert read_log(spec) == "uid=1234 gid=50(staff) groups=50(staff)"


def test_environment_and_missing_working_directory_is_created(make_spec):
    spec = make_spec(["sh", "-c", "echo $GREETING; pwd"], env=["PATH=/bin", "GREETING=hello"],
                     cwd="/srv/app")
    run_to_exit(spec)
    assert read_log(spec).splitlines() == ["hello", "/srv/app"]


def test_bind_mounts_and_read_only_bind_mounts(make_spec, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from host\n")
    config = tmp_path / "config.txt"
    config.write_text("setting=1\n")
    spec = make_spec(["sh", "-c", "cat /data/in.txt /etc/app.conf; echo out > /data/out.txt; "
                                  "echo x > /etc/app.conf || echo config-read-only"],
                     mounts=[Mount(str(data), "/data"),
                             Mount(str(config), "/etc/app.conf", options=["ro"])])
    run_to_exit(spec)
    output = read_log(spec)
    assert "from host" in output and "setting=1" in output
    assert "config-read-only" in output
    assert (data / "out.txt").read_text() == "out\n"
    assert config.read_text() == "setting=1\n"


def test_read_only_rootfs(make_spec):
    spec = make_spec(["sh", "-c", "touch /newfile || echo refused; echo ok > /dev/shm/x && "
                                  "cat /dev/shm/x"], readonly_rootfs=True)
    run_to_exit(spec)
    lines = read_log(spec).splitlines()
    assert "touch: /newfile: Read-only file system" in lines
    assert "refused" in lines and "ok" in lines


def _a_host_disk() -> tuple[int, int]:
    """major, minor of a block device of this host that has data (reading it would succeed)."""
    for name in sorted(os.listdir("/sys/class/block")):
        base = os.path.join("/sys/class/block", name)
        with open(os.path.join(base, "size")) as f:
            if int(f.read()) > 0:
                with open(os.path.join(base, "dev")) as f:
                    major, minor = f.read().strip().split(":")
                return int(major), int(minor)
    pytest.fail("this host has no block device with data to test device isolation with")


def test_device_nodes_shipped_in_an_image_layer_cannot_be_used(make_spec, busybox_layer,
                                                               tmp_path):
    layer = tmp_path / "devices-layer"
    (layer / "devices").mkdir(parents=True)
    os.mknod(layer / "devices" / "null-copy", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(layer / "devices" / "disk", 0o666 | stat.S_IFBLK, os.makedev(*_a_host_disk()))
    spec = make_spec(["sh", "-c", "echo x > /devices/null-copy && echo null-copy-usable; "
                                  "head -c 512 /devices/disk | wc -c; echo x > /dev/null && "
                                  "echo own-null-usable"],
                     lower_dirs=[busybox_layer, str(layer)])

    run_to_exit(spec)

    lines = read_log(spec).splitlines()
    assert "null-copy-usable" not in lines and "512" not in lines, lines
    assert any("/devices/null-copy: Permission denied" in line for line in lines), lines
    assert any("/devices/disk: Permission denied" in line for line in lines), lines
    assert "own-null-usable" in lines


def test_a_device_node_made_in_the_containers_dev_is_refused_by_the_device_cgroup(make_spec):
    assert cgroups.mode() == "v1", "the device allowlist is v1 only (v2 needs eBPF)"
    major, minor = _a_host_disk()
    spec = make_spec(["sh", "-c", f"mknod /dev/disk b {major} {minor} && echo made; "
                                  "head -c 512 /dev/disk | wc -c; mknod /dev/null2 c 1 3 && "
                                  "echo x > /dev/null2 && echo null2-usable"],
                     capabilities=[*caps.DEFAULT_CAPABILITIES, "MKNOD"])

    run_to_exit(spec)

    lines = read_log(spec).splitlines()
    assert "512" not in lines, lines
    # refused at mknod already (the allowlist covers making nodes too)
    assert "mknod: /dev/disk: Operation not permitted" in lines and "made" not in lines, lines
    assert "null2-usable" in lines


@pytest.fixture
def volume_with_a_tmpfs_inside(tmp_path):
    """A host dir with a file, and a tmpfs mounted at its sub/ (unmounted afterwards)."""
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "top.txt").write_text("top\n")
    sc.mount("tmpfs", str(volume / "sub"), "tmpfs", 0, "size=1m")
    try:
        (volume / "sub" / "inner.txt").write_text("inner\n")
        yield volume
    finally:
        sc.umount2(str(volume / "sub"), sc.MNT_DETACH)


def test_a_read_only_rbind_volume_is_read_only_in_its_submounts_too(make_spec,
                                                                   volume_with_a_tmpfs_inside):
    volume = volume_with_a_tmpfs_inside
    spec = make_spec(["sh", "-c", "cat /data/sub/inner.txt; echo x > /data/top.txt || echo top-ro; "
                                  "echo x > /data/sub/inner.txt || echo sub-ro"],
                     mounts=[Mount(str(volume), "/data", options=["rbind", "ro"])])

    run_to_exit(spec)

    lines = read_log(spec).splitlines()
    assert "inner" in lines and "top-ro" in lines and "sub-ro" in lines, lines
    assert (volume / "sub" / "inner.txt").read_text() == "inner\n"


# Without mount_setattr (kernels before 5.12), each mount under the volume is remounted, its own
# flags kept; run in a private mount namespace of a child process.
REMOUNT_FALLBACK = """
import errno, os, sys
from provisioner.components.runtime.container import rootfs, syscalls as sc
def no_mount_setattr(*args):
    raise OSError(errno.ENOSYS, "mount_setattr: Function not implemented")
sc.mount_setattr = no_mount_setattr
sc.unshare(sc.CLONE_NEWNS)
sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
volume, target = sys.argv[1], sys.argv[2]
sc.mount(volume, target, None, sc.MS_BIND | sc.MS_REC)
rootfs._set_bind_flags(target, sc.MS_RDONLY, recursive=True)
for name in ("top.txt", "sub/inner.txt"):
    try:
        open(os.path.join(target, name), "w").close()
        print(name, "writable")
    except OSError as exc:
        print(name, exc.strerror)
print("nodev kept:", "nodev" in [l.split()[5] for l in open("/proc/self/mountinfo")
                                 if l.split()[4] == target + "/sub"][0])
"""


def test_without_mount_setattr_each_submount_is_remounted_read_only(volume_with_a_tmpfs_inside,
                                                                    tmp_path):
    volume = volume_with_a_tmpfs_inside
    sc.mount(None, str(volume / "sub"), None, sc.MS_REMOUNT | sc.MS_NODEV, "size=1m")
    target = tmp_path / "target"
    target.mkdir()

    result = subprocess.run([sys.executable, "-c", REMOUNT_FALLBACK, str(volume), str(target)],
                            capture_output=True, text=True, check=False)

    assert result.stdout.splitlines() == ["top.txt Read-only file system",
                                          "sub/inner.txt Read-only file system",
                                          "nodev kept: True"], result.stderr
