"""The container core's interactive exec: a process in a running container with a stdin pipe or a
terminal, as `docker exec -i` / `-it` and `kubectl exec -i` / `-it` need (runtime README,
"container").

`start` launches the exec helper (nsexec) and returns a RunningExec whose file descriptors the
caller reads and writes itself (the daemon's event loop, a thread): no copying happens here.
`run` is the blocking form api.exec_process uses, copying to and from file objects.

A TTY is a pseudo-terminal from the container's own devpts instance: the helper opens it after it
has joined the container's mount namespace, so the process sees /dev/pts/N as `tty` reports it,
makes it the process's controlling terminal, and hands the master side back here over a unix
socket (SCM_RIGHTS). The master is the caller's: writing to it is typing, reading from it is the
screen, a resize is an ioctl on it, and closing it hangs the process up as a closed terminal does.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import termios

from .errors import ContainerError
from .spec import Process

# names the exec helper reads (nsexec.py)
PTY_SOCKET_ENV = "PROVISIONER_EXEC_PTY_FD"
IO_KEY = "io"


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ on a terminal; the foreground process gets SIGWINCH when the size changes."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(0, rows), max(0, cols), 0, 0))


class RunningExec:
    """A started exec. `stdin_fd` (a pipe or the terminal master; None when stdin was not asked
    for), `stdout_fd` and `stderr_fd` (None with a TTY: the terminal carries both) are the
    caller's to read and write; `wait` ends it and returns the exit code."""

    def __init__(self, container: str, helper: subprocess.Popen, status_fd: int,
                 stdin_fd: int | None, stdout_fd: int | None, stderr_fd: int | None,
                 tty_fd: int | None):
        self.container = container
        self.helper = helper
        self.status_fd = status_fd
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.tty_fd = tty_fd

    @property
    def output_fds(self) -> dict[int, str]:
        """fd -> "stdout"/"stderr": what to read until EOF (EIO on a terminal whose process ended)."""
        if self.tty_fd is not None:
            return {self.tty_fd: "stdout"}
        return {fd: name for fd, name in ((self.stdout_fd, "stdout"), (self.stderr_fd, "stderr"))
                if fd is not None}

    def resize(self, rows: int, cols: int) -> None:
        if self.tty_fd is not None:
            set_window_size(self.tty_fd, rows, cols)

    def close_stdin(self) -> None:
        """End of input: a pipe is closed; a terminal gets ^D (its EOF) on an empty line, as a
        user typing it would give."""
        if self.stdin_fd is None:
            return
        if self.tty_fd is not None:
            try:
                os.write(self.tty_fd, b"\x04")
            except OSError:
                pass
            return
        os.close(self.stdin_fd)
        self.stdin_fd = None

    def wait(self) -> int:
        """The exit code as a shell reports it; raises ContainerError when it could not start.
        Closes what is still open here (the output fds stay the caller's until then)."""
        code = self.helper.wait()
        with os.fdopen(self.status_fd, "rb") as pipe:
            failure = pipe.read().decode(errors="replace")
        self.close()
        if failure:
            raise ContainerError(f"exec in container {self.container} failed: {failure}")
        return code

    def close(self) -> None:
        for name in ("stdin_fd", "stdout_fd", "stderr_fd", "tty_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                if name == "stdin_fd" and fd == self.tty_fd:
                    continue
                try:
                    os.close(fd)
                except OSError:
                    pass


def start(state_dir: str, process: Process, stdin: bool = False, tty: bool = False,
          size: tuple[int, int] | None = None) -> RunningExec:
    """Start `process` in the running container of `state_dir`, with a stdin pipe and/or a
    terminal of `size` (rows, cols). Raises ContainerError when the container is not running or
    the process cannot be set up."""
    from . import api

    data = api._running(state_dir, "exec in")
    container = data.get("id")
    seccomp_filter = api._seccomp_filter(process, f"exec in container {container}")
    request = {**process.to_dict(), "seccomp_filter": seccomp_filter,
               IO_KEY: {"stdin": stdin, "tty": tty, "size": list(size) if size else None}}
    command, env = api._python_command(api.EXEC_MODULE, state_dir, json.dumps(request))
    status_r, status_w = os.pipe()
    env[api.RESULT_FD_ENV] = str(status_w)
    passed = [status_w]
    ours, theirs = (socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if tty
                    else (None, None))
    if theirs is not None:
        env[PTY_SOCKET_ENV] = str(theirs.fileno())
        passed.append(theirs.fileno())
    stdin_arg = subprocess.PIPE if stdin and not tty else subprocess.DEVNULL
    outputs = subprocess.DEVNULL if tty else subprocess.PIPE
    try:
        helper = subprocess.Popen(command, env=env, pass_fds=passed, stdin=stdin_arg,
                                  stdout=outputs, stderr=outputs, close_fds=True)
    except OSError as exc:
        os.close(status_r)
        raise ContainerError(f"exec in container {container}: cannot start the exec helper: "
                             f"{exc.strerror or exc}") from None
    finally:
        os.close(status_w)
        if theirs is not None:
            theirs.close()
    running = RunningExec(container, helper, status_r, None, None, None, None)
    if tty:
        running.tty_fd = _receive_terminal(ours)
        running.stdin_fd = running.tty_fd if stdin and running.tty_fd is not None else None
        if running.tty_fd is None:       # the helper failed before it had one: say why
            running.wait()
            raise ContainerError(f"exec in container {container} failed: no terminal was made")
    else:
        running.stdin_fd = _detach(helper, "stdin")
        running.stdout_fd = _detach(helper, "stdout")
        running.stderr_fd = _detach(helper, "stderr")
    return running


def _detach(helper: subprocess.Popen, name: str) -> int | None:
    """The raw fd of one of the helper's pipes, no longer owned by its file object."""
    stream = getattr(helper, name)
    if stream is None:
        return None
    fd = os.dup(stream.fileno())
    stream.close()
    setattr(helper, name, None)
    return fd


def _receive_terminal(sock: socket.socket) -> int | None:
    try:
        _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    except OSError:
        fds = []
    finally:
        sock.close()
    if fds:
        os.set_inheritable(fds[0], False)
    return fds[0] if fds else None


def run(state_dir: str, process: Process, stdout, stderr, stdin=None, tty: bool = False,
        size: tuple[int, int] | None = None) -> int:
    """Blocking exec: `stdin` (a bytes file object, read to its end, then closed as EOF) feeds
    the process; its output goes to the `stdout`/`stderr` file objects (with a TTY all of it
    goes to `stdout`)."""
    running = start(state_dir, process, stdin=stdin is not None, tty=tty, size=size)
    pending = stdin.read() if stdin is not None else b""   # exec input is small (a script)
    if running.stdin_fd is not None:
        if running.tty_fd is not None:      # a terminal's input queue takes it at once
            os.write(running.tty_fd, pending)
            pending = b""
            running.close_stdin()
        else:
            os.set_blocking(running.stdin_fd, False)
    targets = {"stdout": stdout, "stderr": stderr}
    reading = running.output_fds
    try:
        while reading:
            if not pending and running.tty_fd is None:
                running.close_stdin()
            writers = [running.stdin_fd] if running.stdin_fd is not None and pending else []
            ready, can_write, _ = select.select(list(reading), writers, [])
            for fd in can_write:
                try:
                    pending = pending[os.write(fd, pending):]
                except BrokenPipeError:      # the process stopped reading: as a shell pipe
                    pending = b""
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:       # EIO: the terminal's last holder closed it
                    chunk = b""
                if not chunk:
                    del reading[fd]
                    continue
                target = targets[reading[fd]]
                if target is not None:
                    target.write(chunk)
                    if hasattr(target, "flush"):
                        target.flush()
        return running.wait()
    finally:
        if running.helper.returncode is None:
            running.close()
            running.helper.wait()
