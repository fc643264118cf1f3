"""runtime: the CLI's side of an interactive stream (`exec -i/-t`): the user's terminal in raw mode
while a TTY session runs, its size sent at the start and on every SIGWINCH, stdin copied in
(its end closes the process's stdin), output copied out. The exit code is the process's.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import termios
import tty as ttymode

from . import iostream


class StreamFailed(Exception):
    """The process could not be run (the daemon's message), or the stream broke."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on `fd`; None when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


@contextlib.contextmanager
def raw_terminal(fd: int, wanted: bool):
    """The terminal on `fd` in raw mode (keys go to the container, ^C included), restored after."""
    if not wanted or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    ttymode.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def pump(connection: iostream.StreamConnection, stdin: bool, tty: bool) -> int:
    """Carry the user's terminal over `connection` until the process ends; its exit code."""
    in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout.flush()
    previous = None
    if tty and terminal_size(out_fd):
        def on_resize(*_):
            size = terminal_size(out_fd)
            if size:
                with contextlib.suppress(OSError):
                    connection.resize(*size)
        previous = signal.signal(signal.SIGWINCH, on_resize)
    try:
        with raw_terminal(in_fd, tty and stdin):
            return _copy(connection, in_fd if stdin else None, out_fd, sys.stderr.fileno())
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
        connection.close()


def _copy(connection: iostream.StreamConnection, in_fd: int | None, out_fd: int,
          err_fd: int) -> int:
    outputs = {iostream.STDOUT: out_fd, iostream.STDERR: err_fd}
    while True:
        watched = [connection] + ([in_fd] if in_fd is not None else [])
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if in_fd is not None and in_fd in ready:
            data = os.read(in_fd, 65536)
            if data:
                connection.send_stdin(data)
            else:
                connection.close_stdin()
                in_fd = None
        if connection not in ready:
            continue
        frames = connection.receive()
        if not frames:
            raise StreamFailed("the connection to the daemon ended before the process did")
        for channel, payload in frames:
            if channel in outputs:
                _write_all(outputs[channel], payload)
            elif channel == iostream.STATUS:
                status = json.loads(payload)
                if "error" in status:
                    raise StreamFailed(status["error"])
                return int(status["exit_code"])


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
