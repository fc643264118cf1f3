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
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute

from .errors import NetworkError

T = TypeVar("T")

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


def run_inside(path: str, work: Callable[[], T]) -> T:
    """``work()``'s result, run in a short-lived thread that has joined the namespace at ``path``.

    Netlink sockets opened by ``work`` talk to that namespace. This replaces pyroute2's
    ``IPRoute(netns=...)``, which forks the (large) daemon for every socket it opens there.
    """
    outcome: list = []

    def inside() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), f"setns into {path}")
            finally:
                os.close(fd)
            outcome.append((True, work()))
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=inside, name=f"netns:{path}")
    worker.start()
    worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


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
