"""runtime/docker: the helper process behind `docker cp`: it enters a running container's mount
namespace and reads or writes files there, so every path and symlink resolves inside the
container's root, never the host's (the kernel makes the namespace's root ours on setns).

`python -m provisioner.components.runtime.docker.archive_helper stat|get|put|write PID PATH`:
stat prints the path's Docker stat JSON; get writes a tar of it to stdout; put extracts the tar
on stdin into the directory PATH; write replaces the file PATH with stdin (the network's hosts
file). Failures print one line on stderr and exit 2 (missing) or 1.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tarfile

from ..container import syscalls as sc


def _stat(path: str) -> dict:
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        mode |= 1 << 31               # Go's os.ModeDir, which Docker's clients read
    if stat.S_ISLNK(info.st_mode):
        mode |= 1 << 27               # os.ModeSymlink
    return {"name": os.path.basename(path.rstrip("/")) or "/", "size": info.st_size,
            "mode": mode, "mtime": _rfc3339(info.st_mtime),
            "linkTarget": os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""}


def _rfc3339(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def main() -> int:
    action, pid, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    _rfc3339(0)                        # import what it needs before the host's files go away
    with open(f"/proc/{pid}/ns/mnt", "rb") as namespace:
        sc.setns(namespace.fileno(), sc.CLONE_NEWNS)
    os.chdir("/")
    try:
        if action == "stat":
            print(json.dumps(_stat(path)))
        elif action == "get":
            _stat(path)
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
                archive.add(path, arcname=os.path.basename(path.rstrip("/")) or ".")
        elif action == "put":
            if not os.path.isdir(path):
                print(f"extraction point is not a directory: {path}", file=sys.stderr)
                return 1
            with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as archive:
                archive.extractall(path, filter="tar")
        elif action == "write":
            content = sys.stdin.buffer.read()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.islink(path):
                os.unlink(path)
            with open(path + ".tmp", "wb") as out:
                out.write(content)
            os.chmod(path + ".tmp", 0o644)
            os.replace(path + ".tmp", path)
        else:
            print(f"unknown action {action}", file=sys.stderr)
            return 1
    except FileNotFoundError:
        print(f"Could not find the file {path}", file=sys.stderr)
        return 2
    except (OSError, tarfile.TarError) as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
