"""The per-container monitor (the "shim"): `serve` runs in a process the monitor server forks
for one container (see monitor_server; api.start asks for it).

Detached from its caller (its own session, nobody's child but init's or a subreaper's), so the
daemon dying or restarting never touches it, it sets up cgroups, forks the container init (see
launcher), reports "exec'd" or why not on the result fd, then copies the container's
stdout/stderr into the CRI log, waits for PID 1 and records its exit in state.json. It runs in
every monitor for the container's whole life, so it imports only light modules (no json, re,
enum, dataclasses): the server's memory is what every monitor shares.
"""

import _signal
import marshal
import os
import select
import sys
import time
from types import SimpleNamespace

from . import cgroups, launcher, statefile, userns
from . import syscalls as sc
from .crilog import CriLogWriter, rfc3339_nano

# after PID 1 exits, how long output still held open by escaped processes is drained
DRAIN_SECONDS = 0.5


def spec_view(data: dict) -> SimpleNamespace:
    """The spec as attributes (what launcher and rootfs read), without the dataclasses."""
    spec = SimpleNamespace(**data)
    spec.process = SimpleNamespace(**data["process"])
    spec.resources = SimpleNamespace(**data["resources"])
    spec.mounts = [SimpleNamespace(**m) for m in data["mounts"]]
    return spec


def report(result_fd: int, payload: dict) -> None:
    os.write(result_fd, (statefile.dumps(payload) + "\n").encode())
    os.close(result_fd)


def _enter_pid_namespace(spec) -> None:
    """unshare/setns CLONE_NEWPID affects only children: the init we fork becomes its PID 1."""
    if "pid" not in spec.namespaces:
        return
    path = spec.namespaces["pid"]
    if path is None:
        sc.unshare(sc.CLONE_NEWPID)
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, sc.CLONE_NEWPID)
    finally:
        os.close(fd)


def _shell_exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Shim:
    def __init__(self, state_dir: str, spec_data: dict, result_fd: int):
        self.state_dir = state_dir
        self.result_fd = result_fd
        self.spec = spec_view(spec_data)
        self.state: dict = {"id": self.spec.id, "status": "created"}
        self.cgroup_record: dict | None = None
        self.cgroup_warning: str | None = None
        self.writer: CriLogWriter | None = None
        self.info_w: int | None = None      # set in the starter: its line to the monitor

    def save(self, **changes) -> None:
        self.state.update(changes)
        statefile.write_json(os.path.join(self.state_dir, statefile.STATE_FILE), self.state)

    def setup_cgroups(self) -> None:
        """Cgroups with the spec's limits. A host without writable cgroups gets a warning and
        no limits; a limit the kernel refuses raises CgroupSetupFailed (nothing left behind)."""
        res = self.spec.resources
        try:
            self.cgroup_record = cgroups.create(self.spec.id, self.spec.cgroup_parent,
                                                res.memory_bytes, res.cpus, res.pids_limit)
        except cgroups.CgroupUnavailable as exc:
            self.cgroup_warning = (f"{exc}; memory, cpu and pids limits are not applied to "
                                   f"container {self.spec.id}")
            print(f"warning: {self.cgroup_warning}", file=sys.stderr, flush=True)

    def run(self) -> int:
        """In the monitor: what must outlive the start (the log pipes and writer), then a
        starter child does the rest (cgroups, namespaces, the init) and exits, so the pages
        that work touches are never the monitor's; the init, orphaned, comes back to the
        monitor (a subreaper), which watches it to the end."""
        wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        outputs = {}
        if self.spec.log_path:
            for stream in ("stdout", "stderr"):
                outputs[stream] = os.pipe2(os.O_CLOEXEC)
            try:
                self.writer = CriLogWriter(self.spec.log_path, self.spec.log_max_bytes)
            except OSError as exc:
                return self.fail(f"cannot open the log file {self.spec.log_path}: "
                                 f"{exc.strerror}")
        info_r, info_w = os.pipe2(os.O_CLOEXEC)
        monitor_pid = os.getpid()
        starter = os.fork()
        if starter == 0:
            os.close(info_r)
            self.info_w = info_w
            code = 1
            try:
                code = self.start(monitor_pid, outputs)
            except BaseException as exc:  # noqa: BLE001 - reported, then the starter ends
                code = self.fail(f"shim failed: {exc!r}")
            finally:
                os._exit(code)
        os.close(info_w)
        for stream in outputs:
            os.close(outputs[stream][1])
        info = b""
        while chunk := os.read(info_r, 65536):
            info += chunk
        os.close(info_r)
        outcome = marshal.loads(info) if info else ("error", "the starter ended without a word")
        if outcome[0] == "error":
            # the log goes before the caller learns of the failure, which it then cleans up
            return self.fail(outcome[1])
        os.close(self.result_fd)        # the starter reported "exec'd"
        pid, self.state = outcome[1:]
        status = self.monitor(pid, {fds[0]: s for s, fds in outputs.items()}, wake_r, self.writer)
        record = self.state.get("cgroups")
        self.save(status="exited", exit_code=_shell_exit_code(status), finished_at=rfc3339_nano(),
                  oom_killed=bool(record and cgroups.oom_killed(record)))
        return 0

    def start(self, monitor_pid: int, outputs: dict) -> int:
        """In the starter: cgroups, namespaces, the init; report "exec'd" to the caller, hand
        the monitor the init's pid and the state (or why the start failed), and end."""
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        if outputs:
            child_out, child_err = outputs["stdout"][1], outputs["stderr"][1]
        else:
            child_out = child_err = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        userns_fd = None
        ids = getattr(self.spec, "user_namespace", None)
        if ids:
            try:
                userns_fd = userns.make_namespace(ids["host_uid"], ids["host_gid"], ids["size"])
            except OSError as exc:
                return self.fail(f"cannot create the user namespace: {exc.strerror or exc}")
        try:
            _enter_pid_namespace(self.spec)
        except OSError as exc:
            return self.fail(f"cannot enter pid namespace: {exc.strerror}")
        pid = os.fork()
        if pid == 0:
            os.close(go_w)      # or the init would wait for its own end of the pipe
            launcher.run_init(self.spec, go_r, error_w, child_out, child_err, userns_fd)
        os.close(go_r)
        os.close(error_w)
        # the cgroups are made while the init builds its namespaces (on the other CPU, if
        # there is one); it joins them itself once it has their record
        try:
            self.setup_cgroups()
        except cgroups.CgroupSetupFailed as exc:
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            return self.fail(str(exc))
        try:
            os.write(go_w, marshal.dumps(self.cgroup_record))
        except BrokenPipeError:
            pass            # the init failed already: the error pipe says why
        os.close(go_w)
        message = b""
        while chunk := os.read(error_r, 4096):
            message += chunk
        if message:
            os.waitpid(pid, 0)
            return self.fail(message.decode(errors="replace"))
        self.save(status="running", pid=pid, pid_start_time=statefile.start_time(pid),
                  shim_pid=monitor_pid, shim_start_time=statefile.start_time(monitor_pid),
                  started_at=rfc3339_nano(), cgroups=self.cgroup_record,
                  cgroup_warning=self.cgroup_warning)
        report(self.result_fd, {"ok": True, "pid": pid, "state": self.state})
        os.write(self.info_w, marshal.dumps(("ok", pid, self.state)))
        return 0

    def fail(self, message: str) -> int:
        """Undo what this process set up and say why the start failed: the starter tells the
        monitor, the monitor (having dropped the log) the caller."""
        if self.cgroup_record:
            try:
                cgroups.remove(self.cgroup_record)
            except OSError as exc:
                message += f" (and its cgroup could not be removed: {exc.strerror})"
        if self.info_w is not None:
            os.write(self.info_w, marshal.dumps(("error", message)))
            return 1
        if self.writer:
            self.writer.discard()
        report(self.result_fd, {"error": message})
        return 1

    def monitor(self, pid: int, pipes: dict[int, str], wake_r: int,
                writer: CriLogWriter | None) -> int:
        """Copy output to the log until PID 1 has exited and its output is drained."""
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        for fd in pipes:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        status: int | None = None
        deadline = None
        while pipes or status is None:
            timeout_ms = None
            if deadline is not None:
                timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if timeout_ms == 0:
                    break
            for fd, _ in poller.poll(timeout_ms):
                if fd == wake_r:
                    self._drain_wakeups(wake_r)
                    status = self._reap(pid, status)
                    if status is not None and deadline is None:
                        deadline = time.monotonic() + DRAIN_SECONDS
                    continue
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    writer.write(pipes[fd], data)
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    del pipes[fd]
        if writer:
            writer.close()
        return status

    @staticmethod
    def _drain_wakeups(wake_r: int) -> None:
        try:
            while os.read(wake_r, 512):
                pass
        except BlockingIOError:
            pass

    @staticmethod
    def _reap(pid: int, status: int | None) -> int | None:
        """Reap every finished child (orphans reparent to us: we are a subreaper)."""
        while True:
            try:
                reaped, child_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status
            if reaped == 0:
                return status
            if reaped == pid:
                status = child_status


def serve(state_dir: str, spec_data: dict, result_fd: int) -> int:
    """Monitor one container until it exits (the process is already detached)."""
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    try:
        return Shim(state_dir, spec_data, result_fd).run()
    except BaseException as exc:
        try:
            report(result_fd, {"error": f"shim failed: {exc!r}"})
        except OSError:
            pass
        raise
