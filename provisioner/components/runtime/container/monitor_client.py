"""The caller's side of the monitor server (monitor_server): api.start asks it for one monitor per
container. One server per calling process, started on first use (the daemon starts it with
itself, `warm_up`), over a socket pair only this process and the server hold; it ends when this
process does, and the monitors it forked run on.

A server found dead (killed, or it refused a request) is replaced on the next request, so a
container start never depends on the one before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

SERVER_MODULE = "provisioner.components.runtime.container.monitor_server"
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))


class MonitorServer:
    """A running monitor server and our end of its socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        # compiling the modules on every start would double the server's start-up: let
        # Python keep the compiled files even where the caller's environment asks not to
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"]
                                             if env.get("PYTHONPATH") else "")
        try:
            # -S: the monitors need only the standard library; what the server does not
            # import is memory no monitor shares or copies
            self._process = subprocess.Popen(
                [sys.executable, "-S", "-m", SERVER_MODULE, str(theirs.fileno())], env=env,
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, cwd="/", start_new_session=True, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def _stop_locked(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.kill()
            except ProcessLookupError:
                pass
            self._process.wait()
            self._process = None

    def ensure_started(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is not None:
                self._stop_locked()
            if self._sock is None:
                self._start()

    def stop(self) -> None:
        """End the server (its monitors run on)."""
        with self._lock:
            self._stop_locked()

    def spawn(self, payload: bytes, result_fd: int, log_fd: int) -> None:
        """Have the server fork a monitor for `payload` that reports on `result_fd` and logs to
        `log_fd` (both stay open here: the caller closes them)."""
        message = len(payload).to_bytes(8, "big") + payload
        with self._lock:
            for attempt in (1, 2):
                if self._process is not None and self._process.poll() is not None:
                    self._stop_locked()
                if self._sock is None:
                    self._start()
                try:
                    sent = self._sock.sendmsg(
                        [message[:8]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         _fd_array(result_fd, log_fd))])
                    if sent != 8:
                        raise BrokenPipeError("short write of the request header")
                    self._sock.sendall(message[8:])
                    return
                except OSError:
                    # a server that died before this request: start another and send again
                    self._stop_locked()
                    if attempt == 2:
                        raise


def _fd_array(*fds: int) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


_server = MonitorServer()


def server() -> MonitorServer:
    return _server


def warm_up() -> None:
    """Start this process's monitor server now rather than on the first container start."""
    _server.ensure_started()
