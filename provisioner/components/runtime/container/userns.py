"""User namespaces for containers: the container's uid/gid 0..size-1 map to host ids
host_uid.., host_gid.. (unprivileged on the host), as Kubernetes' `hostUsers: false`.

How (runs in the shim and the init, light imports only):
- the shim makes the namespace before forking the init: a helper child unshares CLONE_NEWUSER,
  the shim (root on the host) writes its uid_map/gid_map and keeps a handle on it (userns_fd);
- the init, still host root, builds the root filesystem with every image layer mounted
  idmapped through that namespace (so files owned by 0 in the image are owned by the
  container's root, host_uid, and the shared layers are never chowned), the per-container
  upper dir owned by host_uid, and only then joins the user namespace (setns) to drop to it.

Volumes with the "idmap" mount option are idmapped the same way (rootfs._user_mount).

Limits (documented in the README): the mount, network, uts, ipc and pid namespaces belong to
the host's user namespace, so the container's root has no capability over them: it cannot
mount, change its network, or bind ports below net.ipv4.ip_unprivileged_port_start; the image
layers' filesystem must support idmapped mounts (ext4, xfs, btrfs, tmpfs >= 6.3; Linux >= 5.19).
"""

import ctypes
import os

from . import syscalls as sc

CLONE_NEWUSER = 0x10000000
MOUNT_ATTR_IDMAP = 0x00100000
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
# the newer mount syscalls have one number on every architecture
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429


def _syscall(number: int, *args) -> int:
    sc._libc.syscall.restype = ctypes.c_long
    return sc._libc.syscall(ctypes.c_long(number), *args)


def make_namespace(host_uid: int, host_gid: int, size: int) -> int:
    """A new user namespace mapping 0..size-1 to the host ranges; returns an O_CLOEXEC fd on it
    (the namespace lives as long as the fd or a process in it)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(hold_w)    # or the read below never sees the shim's end close
            sc.unshare(CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)      # until the shim has its handle
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("cannot create a user namespace (is user.max_user_namespaces 0?)")
        for name, start in (("uid_map", host_uid), ("gid_map", host_gid)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {start} {size}\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def idmapped_mount(source: str, target: str, userns_fd: int, recursive: bool = False) -> None:
    """Bind `source` at `target` with its ids shifted through the user namespace (and the
    mounts under it too when `recursive`)."""
    deep = AT_RECURSIVE if recursive else 0
    fd = _syscall(_SYS_OPEN_TREE, ctypes.c_int(sc.AT_FDCWD), os.fsencode(source),
                  ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | deep))
    sc._check(fd, f"open_tree {source}")
    try:
        attr = sc._MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        sc._check(_syscall(sc._SYS_MOUNT_SETATTR, ctypes.c_int(fd), b"",
                           ctypes.c_uint(AT_EMPTY_PATH | deep), ctypes.byref(attr),
                           ctypes.c_size_t(ctypes.sizeof(attr))),
                  f"idmapping {source} (does its filesystem support idmapped mounts?)")
        sc._check(_syscall(_SYS_MOVE_MOUNT, ctypes.c_int(fd), b"", ctypes.c_int(sc.AT_FDCWD),
                           os.fsencode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)),
                  f"move_mount {source} to {target}")
    finally:
        os.close(fd)


def enter(userns_fd: int) -> None:
    sc.setns(userns_fd, CLONE_NEWUSER)
