"""The container init and exec'd processes, from fork to execve: namespaces, cgroups, root
filesystem, hostname, user, capabilities, no_new_privs, cwd, env.

Runs in a freshly forked child (of the shim, or of the exec helper). Failures are written as one
line to a close-on-exec pipe, so the parent learns "exec'd" (EOF) or why not (the message).
"""

from __future__ import annotations

import _signal  # not `signal`: that one imports enum, which costs the shim milliseconds
import errno
import marshal
import os

from . import caps, rootfs, seccomp, users
from . import syscalls as sc

TYPE_CHECKING = False   # typing itself is too slow an import for the shim
if TYPE_CHECKING:
    from .spec import ContainerSpec, Process

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LaunchError(Exception):
    """Why the process could not be started, phrased for the user."""


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: undo that."""
    _signal.set_wakeup_fd(-1)
    for signum in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD, _signal.SIGINT,
                   _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(signum, _signal.SIG_DFL)


def find_executable(name: str, env: dict[str, str]) -> str:
    if "/" in name:
        if not os.path.isfile(name):
            raise LaunchError(f"executable file not found: {name}")
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise LaunchError(f"executable file not found in $PATH: {name}")


def _environment(process: Process, home: str, hostname: str | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.env:
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home)
    if hostname:
        env.setdefault("HOSTNAME", hostname)
    return env


def become_process(process: Process, hostname: str | None, create_cwd: bool,
                   seccomp_filter: dict | None = None) -> None:
    """Switch user, drop capabilities, set no_new_privs, chdir, load the seccomp filter (a
    compiled one, see seccomp_profile), and execve (never returns).

    With no_new_privs the filter is loaded last, so it need not allow what the launcher itself
    calls. Without it the kernel lets only CAP_SYS_ADMIN load a filter, so it is loaded before
    the capabilities are dropped (as runc does), and must allow the calls that follow."""
    if not process.args:
        raise LaunchError("no command given")
    try:
        user = users.resolve(process.user)
    except LookupError as exc:
        raise LaunchError(f"cannot resolve user {process.user!r}: {exc}") from None
    env = _environment(process, user.home, hostname)
    path = find_executable(process.args[0], env)
    try:
        keep = caps.mask_of(process.capabilities if process.capabilities is not None
                            else caps.DEFAULT_CAPABILITIES)
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    if create_cwd and not os.path.isdir(process.cwd):
        os.makedirs(process.cwd, mode=0o755, exist_ok=True)   # as Docker does for WORKDIR
    if seccomp_filter and not process.no_new_privileges:
        _install_seccomp(seccomp_filter)
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)     # keep permitted capabilities across the uid change
    caps.drop_bounding_set(keep)
    os.setgroups(user.groups)
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    caps.apply(keep, ambient=process.capabilities is not None)
    if process.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    try:
        os.chdir(process.cwd)
    except OSError as exc:
        raise LaunchError(f"cannot change to working directory {process.cwd}: "
                          f"{exc.strerror}") from None
    if seccomp_filter and process.no_new_privileges:
        _install_seccomp(seccomp_filter)
    try:
        os.execve(path, process.args, env)
    except OSError as exc:
        reason = {errno.ENOENT: "no such file or directory (or its interpreter is missing)",
                  errno.EACCES: "permission denied", errno.ENOEXEC: "exec format error"}
        raise LaunchError(f"cannot execute {path}: "
                          f"{reason.get(exc.errno, exc.strerror)}") from None


def _install_seccomp(compiled: dict) -> None:
    try:
        seccomp.load(compiled)
    except seccomp.SeccompError as exc:
        raise LaunchError(str(exc)) from None


def enter_namespaces(spec: ContainerSpec) -> None:
    """Join the namespaces given as paths and unshare new ones (mount always). The pid namespace
    was already chosen by the shim before forking this process."""
    flags = sc.CLONE_NEWNS
    for kind, value in spec.namespaces.items():
        if kind in ("pid", "mount"):
            continue
        if value is None:
            flags |= sc.NAMESPACE_FLAGS[kind]
            continue
        try:
            fd = os.open(value, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise LaunchError(f"cannot open {kind} namespace {value}: {exc.strerror}") from None
        try:
            sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
        finally:
            os.close(fd)
    sc.unshare(flags)


def run_init(spec: ContainerSpec, go_fd: int, error_fd: int, stdout_fd: int,
             stderr_fd: int, userns_fd: int | None = None) -> None:
    """Child side of the starter's fork: become the container's PID 1 (never returns).

    The starter makes the container's cgroups while this process builds its namespaces, then
    sends their record on `go_fd`; this process joins them before it builds its root (the end
    of `go_fd` without a record: the start failed, the starter says why).
    """
    try:
        reset_signals()
        os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        terminal = None
        if getattr(spec, "console_socket", None):    # a stdin or a terminal (consolelink.py)
            from . import consolelink
            terminal = consolelink.connect(spec)
        os.umask(0o022)
        enter_namespaces(spec)
        _join_cgroups(go_fd)
        rootfs.prepare(spec, userns_fd)
        if spec.hostname and spec.namespaces.get("uts", "host") is None:
            sc.sethostname(spec.hostname)
        if terminal is not None:
            terminal.take_terminal()
        if userns_fd is not None:
            # last: every namespace above belongs to the host's user namespace, so the
            # container's root gets no capability over them
            sc.setns(userns_fd, sc.CLONE_NEWUSER)
            os.close(userns_fd)
        become_process(spec.process, spec.hostname, create_cwd=True,
                       seccomp_filter=getattr(spec, "seccomp_filter", None))
    except BaseException as exc:   # report anything, then die without running Python cleanup
        report_failure(error_fd, exc)
        os._exit(127)


def _join_cgroups(go_fd: int) -> None:
    """Wait for the starter's cgroup record (None: the host gives none) and join it.

    On v1 by writing 0 to each `tasks` file: the init is a single thread, so that moves all of
    it, and for its own thread the kernel skips the global threadgroup lock, whose taking waits
    for an RCU grace period (milliseconds on a busy host) on every cgroup.procs write. v2 has
    only cgroup.procs."""
    message = b""
    while chunk := os.read(go_fd, 65536):
        message += chunk
    os.close(go_fd)
    if not message:
        os._exit(127)
    record = marshal.loads(message)
    if not record:
        return
    name = "tasks" if record.get("mode") == "v1" else "cgroup.procs"
    for path in sorted(set(record.get("paths", {}).values())):
        with open(os.path.join(path, name), "w") as procs:
            procs.write("0")


def report_failure(error_fd: int, exc: BaseException) -> None:
    if isinstance(exc, OSError) and exc.strerror:
        message = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    elif isinstance(exc, LaunchError):
        message = str(exc)
    else:
        message = repr(exc)
    try:
        os.write(error_fd, message.encode(errors="replace")[:4000])
    except OSError:
        pass
