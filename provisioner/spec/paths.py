"""What a host path in the spec may be: `spec.etcd.dataDir` is created 0700 by `create cluster`
and removed whole by `delete cluster`, so it must be a directory of its own.

`data_dir_problem` returns the sentence the schema reports (the validator adds the field path),
or None. Besides being safe to remove, an accepted path is also safe on a shell command line and
in a systemd unit: it holds only letters, digits and `._/-`.
"""

from __future__ import annotations

import posixpath
import re

from provisioner.spec.problems import capped

SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
EXAMPLE = "/var/lib/etcd"

# Trees that belong to the system as a whole: nothing below them is a directory of its own.
SYSTEM_TREES = frozenset({
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr",
})

# Directories that hold other things: a data directory may live below them, never be them.
SHARED_DIRECTORIES = frozenset({
    "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/tmp", "/var",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log",
    "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
})


def system_tree_of(path: str) -> str | None:
    """The system tree `path` is in or is (`/etc` for `/etc/etcd`), if any."""
    top = "/" + path.split("/")[1]
    return top if top in SYSTEM_TREES else None


def data_dir_problem(path: str) -> str | None:
    """Why `path` cannot be a directory that create chmods and delete removes, or None."""
    found = f'(found "{capped(path)}")'
    if not SAFE_PATH.match(path):
        return f"may only contain letters, digits and the characters . _ - / {found}"
    if not posixpath.isabs(path):
        return f"must be an absolute path {found}"
    normal = posixpath.normpath(path)
    if normal != path or path.startswith("//"):
        return (f'must be written without ".", "..", repeated or trailing "/" {found}; '
                f"did you mean {posixpath.normpath('/' + normal.lstrip('/'))}?")
    tree = system_tree_of(path)
    if tree is not None:
        return (f"must not be inside {tree}, which belongs to the system; delete cluster "
                f"removes this directory whole, so use one of its own like {EXAMPLE} {found}")
    if path.count("/") < 2 or path in SHARED_DIRECTORIES or posixpath.dirname(path) == "/home":
        return (f"must be a directory of its own at least two levels deep, like {EXAMPLE}, "
                f"not a system or shared directory: delete cluster removes it whole {found}")
    return None
