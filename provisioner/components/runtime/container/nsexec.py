"""Exec helper, run as
`python -m provisioner.components.runtime.container.nsexec <state_dir> <process-json>`.

Started by api.exec_process (a fresh single-threaded process, as setns into a mount namespace
requires). Joins the container init's cgroups and namespaces, forks so the child lands in the
pid namespace, and the child becomes the process (launcher.become_process). Exits with the
child's exit code as a shell reports it; a failure to start is written to the fd named by
$PROVISIONER_SHIM_RESULT_FD.
"""

import json
import os
import sys

from . import cgroups, launcher, statefile
from . import syscalls as sc
from .spec import Process

RESULT_FD_ENV = "PROVISIONER_SHIM_RESULT_FD"
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


def main() -> int:
    state_dir, process_json = sys.argv[1], sys.argv[2]
    result_fd = int(os.environ.pop(RESULT_FD_ENV))
    os.set_inheritable(result_fd, False)
    process_data = json.loads(process_json)
    seccomp_filter = process_data.pop("seccomp_filter", None)    # compiled by api.exec_process
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
    except BaseException as exc:
        launcher.report_failure(result_fd, exc)
        return 126
    child = os.fork()
    if child == 0:
        try:
            launcher.reset_signals()
            for fd in cgroup_fds:
                os.write(fd, b"0")
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            launcher.become_process(process, hostname, create_cwd=False,
                                    seccomp_filter=seccomp_filter)
        except BaseException as exc:
            launcher.report_failure(result_fd, exc)
            os._exit(127)
    os.close(result_fd)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
