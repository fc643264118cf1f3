"""What a path in the spec may be: an operator-side file the OS can open, and a host path.

`local_path_problem` says why the operator's OS refuses a path the spec names (missing, too
long, a directory where a file is wanted, unreadable) as a sentence for a spec problem, so odd
paths are input errors with their field (exit 3), never unexpected errors.

What a host path in the spec may be: `spec.etcd.dataDir` is created 0700 by `create cluster`
and removed whole by `delete cluster`, so it must be a directory of its own.

`data_dir_problem` returns the sentence the schema reports (the validator adds the field path),
or None. Besides being safe to remove, an accepted path is also safe on a shell command line and
in a systemd unit: it holds only letters, digits and `._/-`.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path

from provisioner.spec.problems import capped

PATH_ECHO_LIMIT = 200  # longer paths than any real one are cut when echoed
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


def local_path_problem(path: Path, want: str = "file", shown: str | None = None) -> str | None:
    """Why `path` on this machine is not a readable `want` ("file" or "directory"), or None.

    `shown` is how to name it (default: the path; an absurdly long one is capped)."""
    name = shown or capped(str(path), PATH_ECHO_LIMIT)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return f"{want} {name} does not exist"
    except OSError as error:
        return f"{name} cannot be used: {error.strerror or error}"
    if want == "file" and stat.S_ISDIR(info.st_mode):
        return f"{name} is a directory, not a file"
    if want == "file" and not stat.S_ISREG(info.st_mode):
        return f"{name} is not a file"
    if want == "directory" and not stat.S_ISDIR(info.st_mode):
        return f"{name} is not a directory"
    if not os.access(path, os.R_OK):
        return f"{want} {name} is not readable"
    return None
