"""Named network namespaces for containers (``runtime.net``).

A namespace is kept alive by a bind mount of its ``ns/net`` file at
``<netns_dir>/<container id>`` (tmpfs: handles are per boot). The container core joins it by path
with setns. Creating one needs no fork: a short-lived thread unshares its own network namespace
(network namespaces are per thread), bind-mounts ``/proc/thread-self/ns/net`` onto the handle,
brings ``lo`` up from inside and ends, so no thread of the caller is ever left in the new namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading

from pyroute2 import IPRoute

from .errors import NetworkError

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def create_handle(path: str) -> None:
    """Create a fresh network namespace, pinned at ``path``, with ``lo`` up inside."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    failure: list[Exception] = []

    def in_new_namespace() -> None:
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _check(
                _libc.mount(b"/proc/thread-self/ns/net", path.encode(), None, MS_BIND, None),
                f"bind mount of the new network namespace on {path}",
            )
            # The netlink socket is created by this thread, so it talks to the new namespace.
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        except Exception as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=in_new_namespace, name=f"netns-create:{path}")
    worker.start()
    worker.join()
    if failure:
        remove_handle(path)
        raise NetworkError(f"cannot create network namespace {path}: {failure[0]}")


def is_handle(path: str) -> bool:
    """True if ``path`` is a live namespace handle (a bind-mounted nsfs file), not a plain file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path) or ".").st_dev
    except FileNotFoundError:
        return False


def remove_handle(path: str) -> None:
    """Unmount and delete a handle; a missing handle is fine (release after a crash or reboot)."""
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        # EINVAL: not a mount point (the namespace was never bound); ENOENT: already gone.
        if err not in (errno.EINVAL, errno.ENOENT):
            raise NetworkError(
                f"cannot unmount network namespace handle {path}: {os.strerror(err)}"
            )
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
