"""`provisioner-runtime exec -i / -t`: stdin piped to the command, and a terminal under a
pseudo-terminal (the user's size, resized with it), over the daemon's upgraded connection."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time

from .conftest import CLI


def _running(daemon, remove_after, name: str) -> None:
    remove_after.append(name)
    result = daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "1000")
    assert result.returncode == 0, result.stderr


def test_exec_i_sends_stdin_and_its_end(daemon, remove_after):
    _running(daemon, remove_after, "exec-stdin")
    data = "".join(f"line {n}\n" for n in range(20000))
    result = daemon.cli("exec", "-i", "exec-stdin", "sh", "-c", "cat; echo bye >&2",
                        input=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert result.stderr == "bye\n"
    read = daemon.cli("exec", "-i", "exec-stdin", "sh", "-c", "read code; exit $code",
                      input="5\n")
    assert read.returncode == 5


def test_exec_i_of_a_missing_command_exits_127_with_the_reason(daemon, remove_after):
    _running(daemon, remove_after, "exec-missing")
    result = daemon.cli("exec", "-i", "exec-missing", "nothere", input="")
    assert result.returncode == 127
    assert "executable file not found" in result.stderr
    assert "Traceback" not in result.stderr


class Terminal:
    """A command run on a pseudo-terminal of ours, as a user's shell would run it."""

    def __init__(self, argv: list[str], rows: int, cols: int):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        self.resize(rows, cols)
        self.screen = b""
        self.reaped = False

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; the screen showed {self.screen!r}"
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
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
            except OSError:
                pass


def test_exec_it_gives_a_resizable_terminal(daemon, remove_after):
    _running(daemon, remove_after, "exec-tty")
    terminal = Terminal([*CLI, "--socket", daemon.socket, "exec", "-it", "exec-tty", "sh"],
                        rows=30, cols=100)
    try:
        terminal.expect("# ")       # the shell's prompt: it reads the terminal from here on
        terminal.type("tty; stty size; echo mark-$((40+2))\r")
        terminal.expect("mark-42")
        assert b"/dev/pts/0" in terminal.screen
        assert b"30 100" in terminal.screen
        terminal.resize(45, 150)         # the CLI gets SIGWINCH and sends the new size
        deadline = time.monotonic() + 60
        while b"45 150" not in terminal.screen:
            assert time.monotonic() < deadline, terminal.screen
            terminal.type("stty size\r")
            terminal.drain(0.5)
        terminal.type("exit 7\r")
        assert terminal.exit_code() == 7
    finally:
        terminal.close()
