"""Per-container cgroups: v2 where the unified hierarchy carries controllers, v1 otherwise.

Container cgroups sit at the hierarchy root + cgroup_parent + id (not under the caller's own
cgroup, which may be a nested, limited one). The record this module returns is kept in
state.json, so state/exec/delete work from files after a daemon restart.
"""

import errno
import os
import time

CGROUP_ROOT = "/sys/fs/cgroup"
# v1 hierarchies a container gets its own group in (set limits in the first four)
V1_CONTROLLERS = ("memory", "cpu", "pids", "cpuset", "cpuacct", "blkio", "freezer", "devices")
V2_CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100000


class CgroupUnavailable(Exception):
    """The host gives no writable cgroups; the message says what was tried."""


def mode(root: str = CGROUP_ROOT) -> str:
    """"v2" (unified hierarchy with controllers at root), "v1" or "none"."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if os.path.isdir(os.path.join(root, "memory")) or os.path.isdir(os.path.join(root, "cpu")):
        return "v1"
    return "none"


def _v1_mountpoints() -> dict[str, str]:
    """controller -> mount point of its v1 hierarchy, from /proc/self/mountinfo."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fields, extra = before.split(), after.split()
            if len(extra) < 3 or extra[0] != "cgroup":
                continue
            for option in extra[2].split(","):
                if option in V1_CONTROLLERS:
                    points.setdefault(option, fields[4])
    return points


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def create(container_id: str, parent: str, memory_bytes: int | None, cpus: float | None,
           pids_limit: int | None) -> dict:
    """Create the container's cgroups with limits; return the record {"mode", "paths"}.

    Raises CgroupUnavailable when the hierarchy is absent or read-only; anything created is
    removed again first.
    """
    kind = mode()
    record: dict = {"mode": kind, "paths": {}}
    if kind == "none":
        raise CgroupUnavailable(f"no cgroup hierarchy mounted at {CGROUP_ROOT}")
    try:
        if kind == "v2":
            _create_v2(record, container_id, parent, memory_bytes, cpus, pids_limit)
        else:
            _create_v1(record, container_id, parent, memory_bytes, cpus, pids_limit)
    except OSError as exc:
        remove(record)
        raise CgroupUnavailable(f"cannot set up cgroups under {CGROUP_ROOT}/{parent}: "
                                f"{exc.strerror or exc}") from None
    return record


def _create_v1(record, container_id, parent, memory_bytes, cpus, pids_limit) -> None:
    seen: set[str] = set()
    for controller, mountpoint in _v1_mountpoints().items():
        path = os.path.join(mountpoint, parent, container_id)
        record["paths"][controller] = path
        if path in seen:        # co-mounted controllers (cpu,cpuacct) share one directory
            continue
        seen.add(path)
        parent_path = os.path.dirname(path)
        os.makedirs(parent_path, exist_ok=True)
        if controller == "cpuset":   # an empty cpuset refuses tasks: inherit from above
            for name in ("cpuset.cpus", "cpuset.mems"):
                for directory in (parent_path, path):
                    os.makedirs(directory, exist_ok=True)
                    if not _read(os.path.join(directory, name)).strip():
                        above = os.path.dirname(directory)
                        _write(os.path.join(directory, name), _read(os.path.join(above, name)))
        os.makedirs(path, exist_ok=True)
    paths = record["paths"]
    if memory_bytes is not None and "memory" in paths:
        _write(os.path.join(paths["memory"], "memory.limit_in_bytes"), str(memory_bytes))
        swap = os.path.join(paths["memory"], "memory.memsw.limit_in_bytes")
        if os.path.exists(swap):    # equal limits: no swap, so the OOM killer fires
            _write(swap, str(memory_bytes))
    if cpus is not None and "cpu" in paths:
        _write(os.path.join(paths["cpu"], "cpu.cfs_period_us"), str(CFS_PERIOD_US))
        _write(os.path.join(paths["cpu"], "cpu.cfs_quota_us"), str(int(cpus * CFS_PERIOD_US)))
    if pids_limit is not None and "pids" in paths:
        _write(os.path.join(paths["pids"], "pids.max"), str(pids_limit))


def _enable_v2_controllers(directory: str) -> None:
    available = _read(os.path.join(directory, "cgroup.controllers")).split()
    wanted = [c for c in V2_CONTROLLERS if c in available]
    enabled = _read(os.path.join(directory, "cgroup.subtree_control")).split()
    missing = [c for c in wanted if c not in enabled]
    if missing:
        _write(os.path.join(directory, "cgroup.subtree_control"),
               " ".join("+" + c for c in missing))


def _create_v2(record, container_id, parent, memory_bytes, cpus, pids_limit) -> None:
    parent_path = os.path.join(CGROUP_ROOT, parent)
    path = os.path.join(parent_path, container_id)
    _enable_v2_controllers(CGROUP_ROOT)
    os.makedirs(parent_path, exist_ok=True)
    _enable_v2_controllers(parent_path)
    os.mkdir(path)
    record["paths"] = {"unified": path}
    if memory_bytes is not None:
        _write(os.path.join(path, "memory.max"), str(memory_bytes))
        if os.path.exists(os.path.join(path, "memory.swap.max")):
            _write(os.path.join(path, "memory.swap.max"), "0")
    if cpus is not None:
        _write(os.path.join(path, "cpu.max"), f"{int(cpus * CFS_PERIOD_US)} {CFS_PERIOD_US}")
    if pids_limit is not None:
        _write(os.path.join(path, "pids.max"), str(pids_limit))


def join(record: dict, pid: int = 0) -> None:
    """Move `pid` (0: the calling process) into every cgroup of the record."""
    for path in sorted(set(record.get("paths", {}).values())):
        _write(os.path.join(path, "cgroup.procs"), str(pid))


def open_procs_files(record: dict) -> list[int]:
    """Write-only fds of each cgroup.procs: joinable later, even from another mount namespace."""
    return [os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            for path in sorted(set(record.get("paths", {}).values()))]


def path_of(record: dict, controller: str) -> str | None:
    """The directory holding `controller`'s files (v2: the one unified directory)."""
    paths = record.get("paths", {})
    return paths.get("unified") or paths.get(controller)


def oom_killed(record: dict) -> bool:
    """Whether the kernel's OOM killer killed a process of this cgroup."""
    if record.get("mode") == "v2":
        name = "memory.events"
    else:
        name = "memory.oom_control"
    directory = path_of(record, "memory")
    if not directory:
        return False
    try:
        for line in _read(os.path.join(directory, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
    except (OSError, ValueError):
        pass
    return False


def stat(record: dict, controller: str, name: str) -> dict[str, int]:
    """A flat-keyed stat file (e.g. cpu.stat, pids.events) as a dict."""
    result: dict[str, int] = {}
    directory = path_of(record, controller)
    if directory:
        for line in _read(os.path.join(directory, name)).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                result[key] = int(value)
    return result


def remove(record: dict, timeout: float = 2.0) -> None:
    """Remove the container's cgroups (idempotent). Busy groups are retried briefly: the
    kernel releases a group a moment after its last task is reaped."""
    deadline = time.monotonic() + timeout
    for path in sorted(set(record.get("paths", {}).values())):
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
