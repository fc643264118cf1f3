"""A container's console: the process holding its stdin pipe or its terminal's master, and the
attach socket clients talk to. `python -m provisioner.components.runtime.container.console
<state_dir> <options-json>`, started by `launch` before the container (as runc's console socket
receiver, conmon's or containerd-shim's stdio holder), so the container's input outlives any
client: `docker attach`, `kubectl attach`, a CLI's `run -it`.

- <state_dir>/console.sock: the init connects (consolelink.py) and gets a stdin pipe's read end,
  or "T" and later sends its terminal's master back.
- <state_dir>/attach.sock: clients speak runtime/iostream.py's frames. In: stdin, resize, close
  (closing stdin closes the container's when it was created `stdin_once`; a terminal gets ^D;
  a client that closes stdout at once is a control client, a resize, and gets no output).
  Out, for a terminal: its output as stdout (the first client also gets what came before anyone
  attached, up to a limit, so a shell's first prompt is not lost), then the exit code. Without a
  terminal the output goes through the monitor to the log as always; clients read it there.
- A terminal's output is also written to the container's log as stdout, each piece as it comes
  (P records for an unfinished line, so a prompt is visible to a log follower at once).

The console ends when the container has exited (or never started within START_SECONDS).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time

from .. import iostream
from .consolelink import ShortPath
from .crilog import CriLogWriter, rfc3339_nano
from .execio import set_window_size

CONSOLE_SOCKET = "console.sock"
ATTACH_SOCKET = "attach.sock"
EARLY_OUTPUT_LIMIT = 64 * 1024
START_SECONDS = 120
CHECK_SECONDS = 0.5
CONTROL_GRACE_SECONDS = 0.02


def socket_paths(state_dir: str) -> tuple[str, str]:
    return os.path.join(state_dir, CONSOLE_SOCKET), os.path.join(state_dir, ATTACH_SOCKET)


def resize(state_dir: str, rows: int, cols: int) -> None:
    """Resize the container's terminal from a control connection (it takes no output)."""
    with connect_attach(state_dir) as sock:
        sock.sendall(iostream.frame(iostream.CLOSE, bytes([iostream.STDOUT])) +
                     iostream.resize_frame(rows, cols))


def connect_attach(state_dir: str) -> socket.socket:
    """A connected (blocking) client socket of the container's console."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with ShortPath(socket_paths(state_dir)[1]) as reachable:
            sock.connect(reachable)
    except OSError:
        sock.close()
        raise
    return sock


def launch(state_dir: str, terminal: bool, stdin_once: bool = False,
           log_path: str | None = None, log_max_bytes: int = 10 * 1024 * 1024) -> str:
    """Start the console for a container about to start in `state_dir`; returns the socket
    for spec.console_socket once it listens."""
    from .api import _python_command

    options = {"terminal": terminal, "stdin_once": stdin_once, "log_path": log_path,
               "log_max_bytes": log_max_bytes}
    command, env = _python_command(__name__, state_dir, json.dumps(options))
    with open(os.path.join(state_dir, "console.log"), "ab") as log:
        starter = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log, cwd="/",
                                   start_new_session=True, close_fds=True)
    ready = starter.stdout.readline()
    starter.stdout.close()
    starter.wait()        # the console detaches at once; this reaps only its first half
    if ready.strip() != b"ready":
        from .errors import ContainerError
        raise ContainerError(f"the console of the container in {state_dir} did not start; "
                             f"see {os.path.join(state_dir, 'console.log')}")
    return socket_paths(state_dir)[0]


def _partial_records(stamp: bytes, data: bytes) -> list[bytes]:
    """CRI records for a terminal's piece of output: whole lines F, the unfinished rest P."""
    *lines, rest = data.split(b"\n")
    records = [b"%s stdout F %s\n" % (stamp, line.rstrip(b"\r")) for line in lines]
    if rest:
        records.append(b"%s stdout P %s\n" % (stamp, rest))
    return records


class Console:
    def __init__(self, state_dir: str, terminal: bool, stdin_once: bool, log_path: str | None,
                 log_max_bytes: int):
        self.state_dir = state_dir
        self.terminal = terminal
        self.stdin_once = stdin_once
        self.writer = CriLogWriter(log_path, log_max_bytes) if log_path and terminal else None
        self.poller = select.poll()
        self.listeners: dict[int, socket.socket] = {}
        self.bound: dict[str, int] = {}      # path -> inode: a restart's console may replace it
        for path in socket_paths(state_dir):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with ShortPath(path) as reachable:
                listener.bind(reachable)
            os.chmod(path, 0o600)
            listener.listen(16)
            self.bound[path] = os.stat(path).st_ino
            self.listeners[listener.fileno()] = listener
            self.poller.register(listener.fileno(), select.POLLIN)
        self.init_listener, self.attach_listener = (
            self.listeners[fd] for fd in list(self.listeners))
        self.init_link: socket.socket | None = None
        self.stdin_fd: int | None = None
        self.master: int | None = None
        self.clients: dict[int, tuple[socket.socket, iostream.FrameDecoder]] = {}
        self.control_only: set[int] = set()
        self.close_pending = False
        self.size: tuple[int, int] | None = None
        self.pending = b""
        self.early = bytearray()
        self.attached_once = False
        self.seen_running = False

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        while True:
            for fd, events in self.poller.poll(CHECK_SECONDS * 1000):
                self._ready(fd, events)
            status = self._container_status()
            if status == "running":
                self.seen_running = True
            elif self.seen_running and status != "created" and self.master is None:
                break        # exited (a terminal's end is its EIO, read out first)
            elif not self.seen_running and time.monotonic() - started > START_SECONDS \
                    and self.init_link is None and self.master is None:
                break
        self._finish()
        return 0

    def _container_status(self) -> str | None:
        from . import api

        try:
            return api.state(self.state_dir).status
        except Exception:  # noqa: BLE001 - no state yet (not started) or gone
            return None

    def _ready(self, fd: int, events: int) -> None:
        if fd == self.init_listener.fileno():
            self._init_connected()
        elif fd == self.attach_listener.fileno():
            self._accept()
        elif self.init_link is not None and fd == self.init_link.fileno():
            self._receive_master()
        elif fd == self.master and events & (select.POLLIN | select.POLLHUP | select.POLLERR):
            self._from_terminal()
        elif fd in self.clients:
            self._from_client(fd)
        elif fd == self.stdin_fd:
            self._catch_up()

    def _init_connected(self) -> None:
        link, _ = self.init_listener.accept()
        if self.terminal:
            link.sendall(b"T")
            self.init_link = link
            self.poller.register(link.fileno(), select.POLLIN)
            return
        child_end, self.stdin_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.stdin_fd, False)
        socket.send_fds(link, [b"S"], [child_end])
        os.close(child_end)
        link.close()
        self._catch_up()

    def _receive_master(self) -> None:
        link = self.init_link
        self.poller.unregister(link.fileno())
        try:
            _, fds, _, _ = socket.recv_fds(link, 16, 1)
        except OSError:
            fds = []
        link.close()
        self.init_link = None
        if not fds:
            return             # the init failed before it had a terminal
        self.master = self.stdin_fd = fds[0]
        os.set_blocking(self.master, False)
        self.poller.register(self.master, select.POLLIN)
        self._apply_size()
        self._catch_up()

    def _apply_size(self) -> None:
        """The last size asked for, on the terminal once there is one."""
        if self.size and self.master is not None:
            try:
                set_window_size(self.master, *self.size)
            except OSError:
                pass

    def _catch_up(self) -> None:
        """Input that came before the container's stdin existed: written, then closed."""
        if self.pending:
            self._write_stdin(b"")
        if self.close_pending and not self.pending:
            self.close_pending = False
            self._close_stdin()

    def _from_terminal(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""             # EIO: the container let its terminal go (it exited)
        if not data:
            self.poller.unregister(self.master)
            os.close(self.master)
            self.master = self.stdin_fd = None
            return
        if self.writer is not None:
            self.writer._emit(_partial_records(rfc3339_nano().encode(), data))
        if not self.attached_once and len(self.early) < EARLY_OUTPUT_LIMIT:
            self.early += data[:EARLY_OUTPUT_LIMIT - len(self.early)]
        self._send_all(iostream.frame(iostream.STDOUT, data))

    # -- attached clients ------------------------------------------------------------------

    def _accept(self) -> None:
        client, _ = self.attach_listener.accept()
        client.settimeout(10)      # a client that stops reading is dropped, not waited for
        fd = client.fileno()
        self.clients[fd] = (client, iostream.FrameDecoder())
        self.poller.register(fd, select.POLLIN)
        # a control client (a resize) says so at once: it must not take the early output
        if select.select([client], [], [], CONTROL_GRACE_SECONDS)[0]:
            self._from_client(fd)
        if not self.attached_once and fd in self.clients and fd not in self.control_only:
            self.attached_once = True
            if self.early:
                self._send(fd, iostream.frame(iostream.STDOUT, bytes(self.early)))
            self.early = bytearray()

    def _from_client(self, fd: int) -> None:
        client, decoder = self.clients[fd]
        try:
            data = client.recv(65536)
            frames = decoder.feed(data) if data else None
        except (OSError, ValueError):
            frames = None
        if frames is None:
            self._drop(fd)
            return
        for channel, payload in frames:
            if channel == iostream.STDIN:
                self._write_stdin(payload)
            elif channel == iostream.RESIZE:
                self.size = iostream.parse_resize(payload) or self.size
                self._apply_size()
            elif channel == iostream.CLOSE and payload[:1] in (b"", b"\x00"):
                self._close_stdin()
            elif channel == iostream.CLOSE and payload[:1] == bytes([iostream.STDOUT]):
                self.control_only.add(fd)      # it reads no output: resize and the like

    def _write_stdin(self, data: bytes) -> None:
        self.pending += data
        if self.stdin_fd is None:
            return                 # not connected yet: kept until the init is
        try:
            while self.pending:
                self.pending = self.pending[os.write(self.stdin_fd, self.pending):]
        except BlockingIOError:
            pass
        except OSError:            # nobody reads it any more (EPIPE)
            self.pending = b""
        if self.stdin_fd == self.master:
            return
        try:
            if self.pending:
                self.poller.register(self.stdin_fd, select.POLLOUT)
            else:
                self.poller.unregister(self.stdin_fd)
        except KeyError:
            pass

    def _close_stdin(self) -> None:
        if not self.stdin_once:
            return
        if self.stdin_fd is None or (self.pending and self.stdin_fd != self.master):
            self.close_pending = True      # once the init connected, and its input is written
            return
        if self.stdin_fd == self.master:
            self._write_stdin(b"\x04")          # ^D: a terminal's end of input
            return
        try:
            self.poller.unregister(self.stdin_fd)
        except KeyError:
            pass
        os.close(self.stdin_fd)
        self.stdin_fd = None

    def _send(self, fd: int, data: bytes) -> None:
        try:
            self.clients[fd][0].sendall(data)
        except OSError:
            self._drop(fd)

    def _send_all(self, data: bytes) -> None:
        for fd in list(self.clients):
            if fd not in self.control_only:
                self._send(fd, data)

    def _drop(self, fd: int) -> None:
        self.control_only.discard(fd)
        client, _ = self.clients.pop(fd)
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        client.close()

    def _finish(self) -> None:
        from . import api

        if self.writer is not None:
            self.writer.close()
        try:
            code = api.wait(self.state_dir, 30).exit_code
        except Exception:  # noqa: BLE001 - the state went away with the container
            code = None
        end = {"exit_code": code} if code is not None else {"error": "the container is gone"}
        self._send_all(iostream.frame(iostream.STATUS, json.dumps(end).encode()))
        for fd in list(self.clients):
            self._drop(fd)
        for path, inode in self.bound.items():
            try:
                if os.stat(path).st_ino == inode:     # not the next run's console's
                    os.unlink(path)
            except FileNotFoundError:
                pass


def main() -> int:
    state_dir, options = sys.argv[1], json.loads(sys.argv[2])
    console = Console(state_dir, bool(options.get("terminal")), bool(options.get("stdin_once")),
                      options.get("log_path"), int(options.get("log_max_bytes") or 10 << 20))
    if os.fork():          # detach: the launcher reaps this parent, never the console
        os._exit(0)
    os.setsid()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return console.run()


if __name__ == "__main__":
    sys.exit(main())
