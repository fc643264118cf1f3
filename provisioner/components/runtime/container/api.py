"""The container core's entry points (runtime README, "container"): start, state, kill, stop,
exec_process, delete. Everything needed later is kept in files under the state directory, so a
restarted daemon (or any other process) can carry on where the last one left off.
"""

import errno
import json
import marshal
import os
import select
import shutil
import signal
import sys
import time
from dataclasses import dataclass

from . import cgroups, monitor_client, seccomp_profile, statefile
from .errors import ContainerError
from .spec import ContainerSpec, Process

EXEC_MODULE = "provisioner.components.runtime.container.nsexec"
RESULT_FD_ENV = "PROVISIONER_SHIM_RESULT_FD"
SHIM_LOG = "shim.log"
# files and directories of the state dir the core creates (and delete removes)
OWNED = (statefile.CONFIG_FILE, statefile.STATE_FILE, SHIM_LOG, "rootfs", "upper", "work",
         "idmapped", "lower-empty")
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))


@dataclass
class ContainerState:
    status: str                 # "created" | "running" | "exited"
    pid: int | None             # container init, host pid namespace
    exit_code: int | None
    oom_killed: bool
    started_at: str | None      # RFC 3339
    finished_at: str | None
    cgroup_warning: str | None  # set when the host gives no writable cgroups (limits not applied)
    id: str | None = None
    cgroups: dict | None = None  # {"mode": "v1"|"v2", "paths": {controller: directory}}
    monitor_pid: int | None = None  # ends just after it has recorded the exit


def _python_command(module: str, *args: str) -> tuple[list[str], dict]:
    """Run a module of this package without site-packages (-S): it needs only the standard
    library, and skipping site saves a good part of the interpreter's start-up."""
    env = dict(os.environ)
    # compiling the modules on every start would double the shim's start-up: let Python keep
    # the compiled files even where the caller's environment asks it not to
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
    return [sys.executable, "-S", "-m", module, *args], env


def _validate(spec: ContainerSpec) -> None:
    name = f"container {spec.id}"
    if not spec.id or "/" in spec.id:
        raise ContainerError(f"container id {spec.id!r} is invalid: use letters, digits, - and _")
    if "," in spec.state_dir or ":" in spec.state_dir:
        raise ContainerError(f"{name}: state directory {spec.state_dir} holds ',' or ':', which "
                             f"overlayfs cannot take; choose another runtime root")
    if not spec.process.args:
        raise ContainerError(f"{name}: no command given; set the image's CMD or pass a command")
    for layer in spec.lower_dirs:
        if not os.path.isdir(layer):
            raise ContainerError(f"{name}: image layer directory {layer} does not exist; "
                                 f"re-pull or rebuild the image")
        if "," in layer or ":" in layer:
            raise ContainerError(f"{name}: layer directory {layer} holds ',' or ':', which "
                                 f"overlayfs cannot take; move the runtime root")
    for mount in spec.mounts:
        if (mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options) \
                and not os.path.exists(mount.source):
            raise ContainerError(f"{name}: mount source {mount.source} (for "
                                 f"{mount.destination}) does not exist; create it first")
        if not mount.destination.startswith("/"):
            raise ContainerError(f"{name}: mount destination {mount.destination!r} must be an "
                                 f"absolute path")
    for kind, path in spec.namespaces.items():
        if path is not None and not os.path.exists(path):
            raise ContainerError(f"{name}: {kind} namespace {path} does not exist; is its pod "
                                 f"sandbox still running?")


def _seccomp_filter(process: Process, name: str) -> dict | None:
    """The process's seccomp setting compiled (None: unconfined); a bad profile is refused
    before anything starts."""
    try:
        return seccomp_profile.compile_setting(process.seccomp, process.capabilities)
    except seccomp_profile.ProfileError as exc:
        raise ContainerError(f"{name}: {exc}") from None


def _remove_owned(state_dir: str) -> None:
    for entry in OWNED:
        path = os.path.join(state_dir, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _shim_log_tail(state_dir: str) -> str:
    try:
        with open(os.path.join(state_dir, SHIM_LOG)) as f:
            return f.read()[-2000:].strip()
    except OSError:
        return ""


def start(spec: ContainerSpec) -> ContainerState:
    """Start the container; return once its process has exec'd, or raise ContainerError."""
    _validate(spec)
    seccomp_filter = _seccomp_filter(spec.process, f"container {spec.id}")
    state_dir = spec.state_dir
    created_dir = not os.path.isdir(state_dir)
    _forget_previous_run(spec)
    try:
        for entry in ("upper", "work", "rootfs") + (() if spec.lower_dirs else ("lower-empty",)):
            os.makedirs(os.path.join(state_dir, entry), exist_ok=True)
        spec_data = spec.to_dict()
        statefile.write_json(os.path.join(state_dir, statefile.CONFIG_FILE), spec_data)
        statefile.write_json(os.path.join(state_dir, statefile.STATE_FILE),
                             {"id": spec.id, "status": "created"})
        result = _spawn_shim(state_dir, spec_data, seccomp_filter)
    except OSError as exc:
        result = {"error": f"cannot prepare {state_dir}: {exc.strerror or exc}"}
    if "error" in result:
        _remove_owned(state_dir)
        if created_dir:
            try:
                os.rmdir(state_dir)
            except OSError:
                pass
        raise ContainerError(f"container {spec.id} failed to start: {result['error']}")
    # the monitor's report carries what it saved: no second read of state.json
    return _as_state(result["state"], "running") if "state" in result else state(state_dir)


def _forget_previous_run(spec: ContainerSpec) -> None:
    """Starting a stopped container again keeps its filesystem (upper dir) but not its cgroups,
    which may hold the last run's counters (an OOM kill, say)."""
    previous = statefile.read_state(spec.state_dir)
    if previous is None:
        return
    if state(spec.state_dir).status == "running":
        raise ContainerError(f"container {spec.id} is already running")
    if previous.get("cgroups"):
        try:
            cgroups.remove(previous["cgroups"])
        except OSError as exc:
            raise ContainerError(f"container {spec.id}: cannot remove the cgroups of its last "
                                 f"run: {exc.strerror}") from None


def _spawn_shim(state_dir: str, spec_data: dict, seccomp_filter: dict | None) -> dict:
    """Have this process's monitor server fork the container's monitor; its one-line report
    says the process exec'd ({"ok", "pid", "state"}: what state.json now holds) or why not
    ({"error"})."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    # marshal, not JSON: the monitor reads it without importing the json module
    payload = marshal.dumps({"state_dir": state_dir,
                             "spec": {**spec_data, "seccomp_filter": seccomp_filter}})
    try:
        log_fd = os.open(os.path.join(state_dir, SHIM_LOG),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            monitor_client.server().spawn(payload, write_fd, log_fd)
        finally:
            os.close(log_fd)
    except OSError as exc:
        os.close(read_fd)
        return {"error": f"cannot reach the monitor server: {exc.strerror or exc}"}
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline()
    if not line:
        tail = _shim_log_tail(state_dir)
        return {"error": "the container's monitor ended without starting it" +
                         (f":\n{tail}" if tail else "")}
    return json.loads(line)


def state(state_dir: str) -> ContainerState:
    data = statefile.read_state(state_dir)
    if data is None:
        raise ContainerError(f"no container state in {state_dir}: the container does not exist "
                             f"or was deleted")
    status = data.get("status", "created")
    if status == "running" and not statefile.is_alive(data.get("shim_pid"),
                                                      data.get("shim_start_time")):
        # The shim saves the exit and then ends: read again, since it may have done both
        # since the first read. Only a shim still "running" on disk vanished without recording
        # an exit (killed, or the host rebooted).
        data = statefile.read_state(state_dir) or data
        status = data.get("status", "created")
        if status == "running" and not statefile.is_alive(data.get("pid"), data.get("pid_start_time")):
            data = statefile.update_state(state_dir, status="exited", exit_code=None)
            status = "exited"
    return _as_state(data, status)


def _as_state(data: dict, status: str) -> ContainerState:
    return ContainerState(
        status=status, pid=data.get("pid"), exit_code=data.get("exit_code"),
        oom_killed=bool(data.get("oom_killed")), started_at=data.get("started_at"),
        finished_at=data.get("finished_at"), cgroup_warning=data.get("cgroup_warning"),
        id=data.get("id"), cgroups=data.get("cgroups"), monitor_pid=data.get("shim_pid"))


def _running(state_dir: str, action: str) -> dict:
    data = statefile.read_state(state_dir)
    if data is None:
        raise ContainerError(f"cannot {action}: no container state in {state_dir}")
    if data.get("status") != "running" or not statefile.is_alive(data.get("pid"),
                                                                 data.get("pid_start_time")):
        raise ContainerError(f"cannot {action} container {data.get('id')}: it is not running")
    return data


def kill(state_dir: str, signal: int = signal.SIGTERM) -> None:
    data = _running(state_dir, "kill")
    try:
        os.kill(data["pid"], signal)
    except ProcessLookupError:
        pass     # exited meanwhile: the shim records it


def wait(state_dir: str, timeout: float | None = None) -> ContainerState:
    """Block until the container has exited (the shim recorded it) or `timeout` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    data = statefile.read_state(state_dir) or {}
    pidfd = None
    try:
        pidfd = os.pidfd_open(data["shim_pid"]) if data.get("shim_pid") else None
    except ProcessLookupError:
        pass
    try:
        while True:
            current = state(state_dir)
            if current.status != "running":
                return current
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return current
            if pidfd is not None:    # readable when the shim exits, after it wrote state.json
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(0.05, remaining) if remaining is not None else 0.05)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def stop(state_dir: str, grace_seconds: float = 10) -> ContainerState:
    """SIGTERM, up to `grace_seconds` to exit, then SIGKILL; returns the exited state."""
    current = state(state_dir)
    if current.status != "running":
        return current
    try:
        kill(state_dir, signal.SIGTERM)
    except ContainerError:
        return wait(state_dir)
    current = wait(state_dir, grace_seconds)
    if current.status == "running":
        try:
            kill(state_dir, signal.SIGKILL)
        except ContainerError:
            pass
        current = wait(state_dir)
    return current


def exec_process(state_dir: str, process: Process, stdout, stderr, stdin=None,
                 tty: bool = False) -> int:
    """Run `process` inside the running container (its namespaces and cgroups); copy its output
    to the `stdout`/`stderr` file objects (bytes), feed it `stdin` (a bytes file object) when
    given, on a terminal with `tty`; return its exit code as a shell would. Streaming callers
    use execio.start."""
    from . import execio

    return execio.run(state_dir, process, stdout, stderr, stdin=stdin, tty=tty)


def _unmount_under(state_dir: str) -> None:
    """Mounts of this container visible here (none normally: the root lives in the container's
    own mount namespace) are detached, deepest first."""
    from . import syscalls
    prefix = os.path.realpath(state_dir) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        try:
            syscalls.umount2(point, syscalls.MNT_DETACH)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise ContainerError(f"cannot unmount {point}: {exc.strerror}") from None


def delete(state_dir: str) -> None:
    """Remove what the core created for a stopped container (idempotent)."""
    data = statefile.read_state(state_dir)
    if data is not None and state(state_dir).status == "running":
        raise ContainerError(f"cannot delete container {data.get('id')}: it is running; "
                             f"stop it first")
    if data and data.get("cgroups"):
        try:
            cgroups.remove(data["cgroups"])
        except OSError as exc:
            raise ContainerError(f"cannot remove the cgroups of container {data.get('id')}: "
                                 f"{exc.strerror}") from None
    if os.path.isdir(state_dir):
        _unmount_under(state_dir)
        _remove_owned(state_dir)
