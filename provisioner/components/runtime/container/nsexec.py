"""Exec helper, run as
`python -m provisioner.components.runtime.container.nsexec <state_dir> <process-json>`.

Started by api.exec_process (a fresh single-threaded process, as setns into a mount namespace
requires). Joins the container init's cgroups and namespaces, forks so the child lands in the
pid namespace, and the child becomes the process (launcher.become_process). Exits with the
child's exit code as a shell reports it; a failure to start is written to the fd named by
$PROVISIONER_SHIM_RESULT_FD.

Input and output (the request's "io", see execio): the child inherits this helper's stdin (a pipe
from the caller, or /dev/null when no stdin was asked for), stdout and stderr. With "tty" a
pseudo-terminal is opened from the container's devpts (after the mount namespace was joined), its
master sent to the caller over the socket named by $PROVISIONER_EXEC_PTY_FD, and its slave made
the child's controlling terminal and fds 0, 1 and 2.
"""

import json
import os
import sys

from . import cgroups, launcher, statefile
from . import syscalls as sc
from .spec import Process

RESULT_FD_ENV = "PROVISIONER_SHIM_RESULT_FD"
PTY_SOCKET_ENV = "PROVISIONER_EXEC_PTY_FD"
# the order matters: the mount namespace last, since /proc/<pid>/ns is read from the host's
# (handles are all opened first); the user namespace after every other, whose owner is the
# host's user namespace (joining them needs the host's capabilities)
NAMESPACE_ORDER = ("ipc", "uts", "net", "pid", "mnt", "user")


def _join(pid: int) -> None:
    handles = []
    for name in NAMESPACE_ORDER:
        theirs = f"/proc/{pid}/ns/{name}"
        if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
            continue
        handles.append(os.open(theirs, os.O_RDONLY | os.O_CLOEXEC))
    for fd in handles:
        sc.setns(fd, 0)
        os.close(fd)


def _spec_hostname(state_dir: str) -> str | None:
    try:
        with open(os.path.join(state_dir, statefile.CONFIG_FILE)) as f:
            return json.load(f).get("hostname") or None
    except (OSError, ValueError):
        return None


def _terminal_modules() -> dict:
    """What a TTY exec needs, imported before the join: after it, imports would search the
    container's filesystem."""
    import fcntl
    import socket
    import termios

    from . import execio
    return {"fcntl": fcntl, "socket": socket, "termios": termios, "execio": execio}


def _open_terminal(modules: dict, size: list | None) -> int:
    """A pty pair from the devpts of the (joined) mount namespace; the master goes to the
    caller, the slave is returned."""
    socket = modules["socket"]
    master, slave = os.openpty()
    if size:
        modules["execio"].set_window_size(master, int(size[0]), int(size[1]))
    with socket.socket(fileno=int(os.environ.pop(PTY_SOCKET_ENV))) as channel:
        socket.send_fds(channel, [b"pty"], [master])
    os.close(master)
    return slave


def _take_terminal(modules: dict, slave: int) -> None:
    """In the child: a new session whose controlling terminal is the pty, on fds 0, 1 and 2."""
    os.setsid()
    modules["fcntl"].ioctl(slave, modules["termios"].TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def main() -> int:
    state_dir, process_json = sys.argv[1], sys.argv[2]
    result_fd = int(os.environ.pop(RESULT_FD_ENV))
    os.set_inheritable(result_fd, False)
    process_data = json.loads(process_json)
    seccomp_filter = process_data.pop("seccomp_filter", None)    # compiled by api.exec_process
    io = process_data.pop("io", None) or {}
    slave = None
    terminal = _terminal_modules() if io.get("tty") else {}
    process = Process.from_dict(process_data)
    try:
        data = statefile.read_state(state_dir) or {}
        pid, started = data.get("pid"), data.get("pid_start_time")
        if data.get("status") != "running" or not statefile.is_alive(pid, started):
            raise launcher.LaunchError("the container is not running")
        # opened now, written by the child: the helper itself stays out of the container's
        # cgroups (its memory must not count against the container's limit)
        cgroup_fds = cgroups.open_procs_files(data.get("cgroups") or {})
        hostname = _spec_hostname(state_dir)
        _join(pid)
        # HOSTNAME as start gives it: the spec's, else the (joined) uts namespace's name
        hostname = hostname or os.uname().nodename
        if io.get("tty"):
            slave = _open_terminal(terminal, io.get("size"))
    except BaseException as exc:
        launcher.report_failure(result_fd, exc)
        return 126
    child = os.fork()
    if child == 0:
        try:
            launcher.reset_signals()
            for fd in cgroup_fds:
                os.write(fd, b"0")
            if slave is not None:
                _take_terminal(terminal, slave)
            elif not io.get("stdin"):
                os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            launcher.become_process(process, hostname, create_cwd=False,
                                    seccomp_filter=seccomp_filter)
        except BaseException as exc:
            launcher.report_failure(result_fd, exc)
            os._exit(127)
    os.close(result_fd)
    if slave is not None:
        os.close(slave)     # the terminal ends (EIO on the master) when the process lets it go
    os.close(0)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
