"""Per-container cgroups: v2 where the unified hierarchy carries controllers, v1 otherwise.

Container cgroups sit at the hierarchy root + cgroup_parent + id (not under the caller's own
cgroup, which may be a nested, limited one). The record this module returns is kept in
state.json, so state/exec/delete work from files after a daemon restart.
"""

import errno
import os
import time

from . import devices_bpf

CGROUP_ROOT = "/sys/fs/cgroup"
# v1 hierarchies a container gets its own group in (set limits in the first four)
V1_CONTROLLERS = ("memory", "cpu", "pids", "cpuset", "cpuacct", "blkio", "freezer", "devices")
V2_CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100000


class CgroupUnavailable(Exception):
    """The host gives no writable cgroups; the message says what was tried."""


class CgroupSetupFailed(Exception):
    """Cgroups exist but a limit (or the device allowlist) could not be set: the container must
    not start, since it would run without the limit it asked for. Nothing is left behind."""


# errors creating the directories that mean "this host gives us no cgroups" (read-only or
# absent hierarchy, no permission, as inside an unprivileged container): run without limits
_UNAVAILABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENODEV}

# cgroup v1 device allowlist: the nodes the core creates in the container's /dev
# (null, zero, full, random, urandom, tty, console, ptmx) and devpts terminals
DEVICE_ALLOWLIST = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")


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


def _set(directory: str, name: str, value: str, what: str,
         hint: str = "choose another value for that limit") -> None:
    """Write one limit file; a refusal names the limit, the value, the file and what to do."""
    try:
        _write(os.path.join(directory, name), value)
    except OSError as exc:
        raise CgroupSetupFailed(f"the kernel refused the {what} ({value!r} written to "
                                f"{os.path.join(directory, name)}: {exc.strerror or exc}); "
                                f"{hint}") from None


def create(container_id: str, parent: str, memory_bytes: int | None, cpus: float | None,
           pids_limit: int | None) -> dict:
    """Create the container's cgroups with limits; return the record {"mode", "paths"}.

    Raises CgroupUnavailable when the hierarchy is absent, read-only or not ours to write (the
    caller runs the container without limits and says so), and CgroupSetupFailed when a
    limit value is refused (the caller fails the start). Anything created is removed first.

    Devices: the container may use only the standard nodes (DEVICE_ALLOWLIST), so device
    nodes in image layers are useless even if a mount lacked nodev: on v1 through a deny-all
    devices cgroup, on v2 (no devices files there) through an eBPF cgroup-device program
    (devices_bpf) attached to the container's cgroup.
    """
    kind = mode()
    record: dict = {"mode": kind, "paths": {}}
    if kind == "none":
        raise CgroupUnavailable(f"no cgroup hierarchy mounted at {CGROUP_ROOT}")
    try:
        if kind == "v2":
            _make_v2_dirs(record, container_id, parent)
            devices_bpf.attach(record["paths"]["unified"], DEVICE_ALLOWLIST)
        else:
            _make_v1_dirs(record, container_id, parent)
    except OSError as exc:
        _remove_quietly(record)
        reason = (f"cannot set up cgroups under {CGROUP_ROOT}/{parent}: "
                  f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        if exc.errno in _UNAVAILABLE_ERRNOS:
            raise CgroupUnavailable(reason) from None
        raise CgroupSetupFailed(reason) from None
    try:
        if kind == "v2":
            _limit_v2(record["paths"]["unified"], memory_bytes, cpus, pids_limit)
        else:
            _limit_v1(record["paths"], memory_bytes, cpus, pids_limit)
    except CgroupSetupFailed:
        _remove_quietly(record)
        raise
    return record


def _remove_quietly(record: dict) -> None:
    """Cleanup on a failed create: the groups are empty, so this only fails if someone else
    holds them; the original error is the one to report."""
    try:
        remove(record)
    except OSError:
        pass


def _make_v1_dirs(record: dict, container_id: str, parent: str) -> None:
    seen: set[str] = set()
    for controller, mountpoint in _v1_mountpoints().items():
        path = os.path.join(mountpoint, parent, container_id)
        record["paths"][controller] = path     # before mkdir: a failed create removes it
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


def _limit_v1(paths: dict[str, str], memory_bytes, cpus, pids_limit) -> None:
    if "devices" in paths:
        hint = "the devices cgroup above the container must allow the standard nodes"
        _set(paths["devices"], "devices.deny", "a", "device allowlist (deny all)", hint)
        for rule in DEVICE_ALLOWLIST:
            _set(paths["devices"], "devices.allow", rule, "device allowlist entry", hint)
    if memory_bytes is not None and "memory" in paths:
        what = f"memory limit {memory_bytes} bytes"
        _set(paths["memory"], "memory.limit_in_bytes", str(memory_bytes), what)
        if os.path.exists(os.path.join(paths["memory"], "memory.memsw.limit_in_bytes")):
            # equal limits: no swap, so the OOM killer fires
            _set(paths["memory"], "memory.memsw.limit_in_bytes", str(memory_bytes), what)
    if cpus is not None and "cpu" in paths:
        what = f"cpu limit {cpus} cpus"
        _set(paths["cpu"], "cpu.cfs_period_us", str(CFS_PERIOD_US), what)
        _set(paths["cpu"], "cpu.cfs_quota_us", str(round(cpus * CFS_PERIOD_US)), what)
    if pids_limit is not None and "pids" in paths:
        _set(paths["pids"], "pids.max", str(pids_limit), f"pids limit {pids_limit}")


def _enable_v2_controllers(directory: str) -> None:
    available = _read(os.path.join(directory, "cgroup.controllers")).split()
    wanted = [c for c in V2_CONTROLLERS if c in available]
    enabled = _read(os.path.join(directory, "cgroup.subtree_control")).split()
    missing = [c for c in wanted if c not in enabled]
    if missing:
        _write(os.path.join(directory, "cgroup.subtree_control"),
               " ".join("+" + c for c in missing))


def _make_v2_dirs(record: dict, container_id: str, parent: str) -> None:
    parent_path = os.path.join(CGROUP_ROOT, parent)
    path = os.path.join(parent_path, container_id)
    _enable_v2_controllers(CGROUP_ROOT)
    os.makedirs(parent_path, exist_ok=True)
    _enable_v2_controllers(parent_path)
    os.mkdir(path)
    record["paths"] = {"unified": path}


def _limit_v2(path: str, memory_bytes, cpus, pids_limit) -> None:
    if memory_bytes is not None:
        what = f"memory limit {memory_bytes} bytes"
        _set(path, "memory.max", str(memory_bytes), what)
        if os.path.exists(os.path.join(path, "memory.swap.max")):
            _set(path, "memory.swap.max", "0", what)
    if cpus is not None:
        _set(path, "cpu.max", f"{round(cpus * CFS_PERIOD_US)} {CFS_PERIOD_US}",
             f"cpu limit {cpus} cpus")
    if pids_limit is not None:
        _set(path, "pids.max", str(pids_limit), f"pids limit {pids_limit}")


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


# -- CPU shares and the groups above containers (the kubelet's QoS and pod cgroups) ----------

MIN_SHARES, MAX_SHARES = 2, 262144      # the kernel's range for v1 cpu.shares


def shares_to_weight(shares: int) -> int:
    """v2 cpu.weight (1..10000) for v1 cpu.shares (2..262144), the linear map the kubelet uses,
    so a pod's weight follows from its CPU request on either hierarchy."""
    shares = min(max(int(shares), MIN_SHARES), MAX_SHARES)
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def set_cpu_shares(record: dict, shares: int) -> None:
    """Give an existing cgroup its relative CPU weight (v1 cpu.shares, v2 cpu.weight)."""
    directory = path_of(record, "cpu")
    if directory is None:
        return
    if record.get("mode") == "v2":
        _set(directory, "cpu.weight", str(shares_to_weight(shares)), f"cpu shares {shares}")
    else:
        shares = min(max(int(shares), MIN_SHARES), MAX_SHARES)
        _set(directory, "cpu.shares", str(shares), f"cpu shares {shares}")


def _v1_inherit_cpuset(directory: str) -> None:
    """An empty cpuset refuses tasks and children: take the parent's CPUs and memory nodes."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(os.path.join(directory, name)).strip():
            _write(os.path.join(directory, name),
                   _read(os.path.join(os.path.dirname(directory), name)))


def _make_levels(top: str, relative: str, each=None) -> str:
    """mkdir every level of top/relative (calling `each` on each level, top first)."""
    path = top
    for part in [p for p in relative.split("/") if p]:
        if each is not None:
            each(path)
        path = os.path.join(path, part)
        os.makedirs(path, exist_ok=True)
    if each is not None:
        each(path)
    return path


def ensure_group(group: str, memory_bytes: int | None = None, cpus: float | None = None,
                 cpu_shares: int | None = None) -> dict:
    """Create (or update) the cgroup `group` (relative to the hierarchy root) meant to hold
    other cgroups, such as kubepods/burstable/pod<uid>, with the limits given (None: left as
    they are). Returns its record {"mode", "paths"}; raises OSError (CgroupSetupFailed for a
    refused limit) like create."""
    kind = mode()
    if kind == "none":
        raise CgroupUnavailable(f"no cgroup hierarchy mounted at {CGROUP_ROOT}")
    record: dict = {"mode": kind, "paths": {}}
    if kind == "v2":
        path = _make_levels(CGROUP_ROOT, group, _enable_v2_controllers)
        record["paths"] = {"unified": path}
        _limit_v2(path, memory_bytes, cpus, None)
    else:
        for controller, mountpoint in _v1_mountpoints().items():
            inherit = _v1_inherit_cpuset if controller == "cpuset" else None
            record["paths"][controller] = _make_levels(mountpoint, group, inherit)
        limited = {c: p for c, p in record["paths"].items() if c != "devices"}
        _limit_v1(limited, memory_bytes, cpus, None)
    if cpu_shares is not None:
        set_cpu_shares(record, cpu_shares)
    return record


def remove_group(group: str, timeout: float = 2.0) -> None:
    """Remove the cgroup `group` in every hierarchy (idempotent); raises OSError if it still
    holds cgroups or tasks after `timeout`."""
    kind = mode()
    if kind == "v2":
        paths = {"unified": os.path.join(CGROUP_ROOT, group)}
    elif kind == "v1":
        paths = {c: os.path.join(m, group) for c, m in _v1_mountpoints().items()}
    else:
        return
    remove({"mode": kind, "paths": paths}, timeout)

