"""A command run on a pseudo-terminal the test owns, as a user's shell would run it: for the
interactive (`-it`) tests of the runtime CLI, kubectl and the docker CLI."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time


class Terminal:
    """A command run on a pseudo-terminal of ours, as a user's shell would run it."""

    def __init__(self, argv: list[str], rows: int, cols: int, env: dict | None = None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:       # the size is set before the command can read it
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(argv[0], argv, env if env is not None else os.environ)
        os.set_blocking(self.fd, False)
        self.screen = b""
        self.reaped = False

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize_until_seen(self, rows: int, cols: int, timeout: float = 60) -> None:
        """Resize the terminal, then ask the shell in it for its size until it reports the new
        one (the resize travels through the client and the server asynchronously)."""
        self.resize(rows, cols)
        deadline = time.monotonic() + timeout
        while f"{rows} {cols}".encode() not in self.screen:
            assert time.monotonic() < deadline, self.screen
            self.type("stty size\r")
            self.drain(0.5)

    def type(self, text: str, timeout: float = 30) -> None:
        """Keys typed; a command that stopped reading them fails the test, never hangs it."""
        data = text.encode()
        deadline = time.monotonic() + timeout
        while data:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the command stopped reading input; screen {self.screen!r}"
            if select.select([], [self.fd], [], remaining)[1]:
                data = data[os.write(self.fd, data):]

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; the screen showed {self.screen!r}"
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                assert chunk, f"ended before {text!r}; the screen showed {self.screen!r}"
                self.screen += chunk

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.reaped = True
                return os.waitstatus_to_exitcode(status)
            self.drain(0.1)
        raise AssertionError(f"the command did not exit; the screen showed {self.screen!r}")

    def close(self) -> None:
        if not self.reaped:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)

    def drain(self, timeout: float) -> None:
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                self.screen += os.read(self.fd, 4096)
            except OSError:       # BlockingIOError, or EIO once the command has gone
                pass
