"""The container's root filesystem, built inside its own (new) mount namespace: overlay root
(nodev), /proc, /dev (tmpfs with device nodes, pts, shm, mqueue), read-only /sys, user mounts,
pivot_root, then masked and read-only paths as runc does. Runs in the init process before exec.

Everything is mounted in the container's mount namespace only, so when the container's last
process exits the kernel drops these mounts; nothing is left on the host to unmount.
"""

from __future__ import annotations

import errno
import os
import stat

from . import syscalls as sc
from . import userns

TYPE_CHECKING = False   # typing itself is too slow an import for the shim
if TYPE_CHECKING:
    from .spec import ContainerSpec, Mount

DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
           "tty": (5, 0)}
DEV_SYMLINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC

# user mount options that are flags; anything else goes to the filesystem as data
_FLAG_OPTIONS = {
    "ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False), "nosuid": (sc.MS_NOSUID, True),
    "suid": (sc.MS_NOSUID, False), "nodev": (sc.MS_NODEV, True), "dev": (sc.MS_NODEV, False),
    "noexec": (sc.MS_NOEXEC, True), "exec": (sc.MS_NOEXEC, False),
    "noatime": (sc.MS_NOATIME, True), "relatime": (sc.MS_RELATIME, True),
    "strictatime": (sc.MS_STRICTATIME, True), "sync": (sc.MS_SYNCHRONOUS, True),
    "bind": (sc.MS_BIND, True), "rbind": (sc.MS_BIND | sc.MS_REC, True),
}
_PROPAGATION = {"private", "rprivate", "slave", "rslave", "shared", "rshared", "idmap"}


def overlay_options(spec: ContainerSpec, lower_dirs: list[str] | None = None) -> str:
    """lowerdir lists the top layer first, so the spec's bottom-first list is reversed."""
    lowers = (list(reversed(spec.lower_dirs if lower_dirs is None else lower_dirs))
              or [os.path.join(spec.state_dir, "lower-empty")])
    return (f"lowerdir={':'.join(lowers)},upperdir={os.path.join(spec.state_dir, 'upper')},"
            f"workdir={os.path.join(spec.state_dir, 'work')}")


def secure_join(root: str, path: str) -> str:
    """`path` inside `root`, following symlinks as if `root` were `/` (no escape through ..)."""
    pending = [p for p in path.split("/") if p]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _parse_options(options: list[str]) -> tuple[int, list[str]]:
    flags, data = 0, []
    for option in options:
        if option in _FLAG_OPTIONS:
            bit, on = _FLAG_OPTIONS[option]
            flags = flags | bit if on else flags & ~bit
        elif option not in _PROPAGATION:
            data.append(option)
    return flags, data


def _make_mountpoint(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


def _user_mount(rootfs: str, mount: Mount, userns_fd: int | None = None) -> None:
    """A volume. With the "idmap" option (and a user namespace) a bind mount is idmapped, so
    host ids 0.. show as the container's 0.. (as CRI runtimes do for hostUsers: false pods);
    without it files keep their host ids, unmapped ones showing as 65534."""
    target = secure_join(rootfs, mount.destination)
    flags, data = _parse_options(mount.options)
    if mount.type == "bind" or flags & sc.MS_BIND:
        if not os.path.exists(mount.source):
            raise FileNotFoundError(errno.ENOENT, f"mount source {mount.source} does not exist "
                                                  f"(for {mount.destination})")
        _make_mountpoint(target, os.path.isdir(mount.source))
        if "idmap" in mount.options and userns_fd is not None:
            userns.idmapped_mount(mount.source, target, userns_fd, bool(flags & sc.MS_REC))
        else:
            sc.mount(mount.source, target, None, sc.MS_BIND | (flags & sc.MS_REC))
        extra = flags & ~(sc.MS_BIND | sc.MS_REC)
        if extra:   # a bind mount takes its flags only afterwards
            _set_bind_flags(target, extra, recursive=bool(flags & sc.MS_REC))
    else:
        _make_mountpoint(target, True)
        sc.mount(mount.source, target, mount.type, flags, ",".join(data) or None)


_MOUNT_ATTRS = {sc.MS_RDONLY: sc.MOUNT_ATTR_RDONLY, sc.MS_NOSUID: sc.MOUNT_ATTR_NOSUID,
                sc.MS_NODEV: sc.MOUNT_ATTR_NODEV, sc.MS_NOEXEC: sc.MOUNT_ATTR_NOEXEC}
# per-mount options as /proc/self/mountinfo lists them
_MOUNTINFO_FLAGS = {"ro": sc.MS_RDONLY, "nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV,
                    "noexec": sc.MS_NOEXEC, "noatime": sc.MS_NOATIME,
                    "nodiratime": sc.MS_NODIRATIME, "relatime": sc.MS_RELATIME}
_ATIME_FLAGS = sc.MS_NOATIME | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NODIRATIME


def _set_bind_flags(target: str, flags: int, recursive: bool) -> None:
    """Add `flags` to the bind mount at `target` and, for rbind, to every mount under it: a
    remount of the top alone would leave e.g. a tmpfs inside a ":ro" volume writable.
    mount_setattr does it in one call and keeps each mount's other flags; kernels before
    5.12 (ENOSYS) and atime options get a remount of each mount, its own flags kept."""
    attrs = [attr for bit, attr in _MOUNT_ATTRS.items() if flags & bit]
    if attrs and not flags & ~sum(_MOUNT_ATTRS):
        try:
            sc.mount_setattr(target, sum(attrs), recursive)
            return
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
    for mountpoint, current in _mounts_from(target, recursive):
        if flags & _ATIME_FLAGS:
            current &= ~_ATIME_FLAGS
        sc.mount(None, mountpoint, None, sc.MS_BIND | sc.MS_REMOUNT | current | flags)


def _mounts_from(target: str, recursive: bool) -> list[tuple[str, int]]:
    """(mount point, its MS_* flags) for `target` and, if `recursive`, the mounts under it,
    top first, from this mount namespace's /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            # octal escapes (\040 for a space) as the kernel writes them
            point = fields[4].encode().decode("unicode_escape").encode("latin-1").decode(
                errors="surrogateescape")
            if point == target or (recursive and point.startswith(target.rstrip("/") + "/")):
                current = 0
                for option in fields[5].split(","):
                    current |= _MOUNTINFO_FLAGS.get(option, 0)
                found.append((point, current))
    return found


def _mount_dev(rootfs: str) -> None:
    dev = os.path.join(rootfs, "dev")
    os.makedirs(dev, exist_ok=True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in DEV_SYMLINKS.items():
        os.symlink(target, os.path.join(dev, name))
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(os.path.join(dev, name), 0o755)
    sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", _NOSUID_NODEV_NOEXEC,
             "mode=1777,size=65536k")
    sc.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", _NOSUID_NODEV_NOEXEC)


def _mount_sys(rootfs: str) -> None:
    target = os.path.join(rootfs, "sys")
    os.makedirs(target, exist_ok=True)
    try:
        sc.mount("sysfs", target, "sysfs", sc.MS_RDONLY | _NOSUID_NODEV_NOEXEC)
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        # sysfs of a network namespace we do not own: show the host's, read-only
        sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
                 | _NOSUID_NODEV_NOEXEC)


def _idmapped_lowers(spec: ContainerSpec, userns_fd: int) -> list[str]:
    """Each image layer mounted idmapped (userns.py) under state_dir/idmapped/, in this mount
    namespace only; the container's own upper dir is owned by its root's host ids."""
    mapped = []
    for index, layer in enumerate(spec.lower_dirs):
        target = os.path.join(spec.state_dir, "idmapped", str(index))
        os.makedirs(target, exist_ok=True)
        userns.idmapped_mount(layer, target, userns_fd)
        mapped.append(target)
    ids = spec.user_namespace
    for entry in ("upper", "work"):
        os.chown(os.path.join(spec.state_dir, entry), ids["host_uid"], ids["host_gid"])
    return mapped


def _write_sysctls(proc: str, sysctls: dict[str, str]) -> None:
    """Through the container's own /proc (its namespaces are already in place), so only that
    namespace changes; the caller has checked that each name is namespaced."""
    for name, value in sysctls.items():
        path = os.path.join(proc, "sys", *name.split("."))
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot set sysctl {name}={value}: {exc.strerror}") \
                from None


def prepare(spec: ContainerSpec, userns_fd: int | None = None) -> None:
    """Build the root in this (new) mount namespace and pivot into it; cwd ends at /."""
    rootfs = os.path.join(spec.state_dir, "rootfs")
    # our mounts must never propagate back to the host
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lowers = _idmapped_lowers(spec, userns_fd) if userns_fd is not None else None
    # nodev: image layers may carry device nodes (a tar can hold any); the container's device
    # nodes live only in its own /dev tmpfs (see cgroups.DEVICE_ALLOWLIST for the v1 backstop)
    sc.mount("overlay", rootfs, "overlay", sc.MS_NODEV, overlay_options(spec, lowers))
    proc = os.path.join(rootfs, "proc")
    os.makedirs(proc, exist_ok=True)
    sc.mount("proc", proc, "proc", _NOSUID_NODEV_NOEXEC)
    _write_sysctls(proc, getattr(spec, "sysctls", None) or {})
    _mount_dev(rootfs)
    _mount_sys(rootfs)
    for mount in spec.mounts:
        _user_mount(rootfs, mount, userns_fd)
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    # the old root is stacked under the new one at "."; detach it
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if not getattr(spec, "unmasked_proc", False):
        _mask_paths()
    if spec.readonly_rootfs:
        # a bind remount sets exactly the flags given: keep nodev
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NODEV)


def _mask_paths() -> None:
    for path in MASKED_PATHS:
        try:
            if os.path.isdir(path):
                sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0")
            elif os.path.exists(path):
                sc.mount("/dev/null", path, None, sc.MS_BIND)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
    for path in READONLY_PATHS:
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
                     | _NOSUID_NODEV_NOEXEC)
