"""`provisioner-runtime exec -i / -t`: stdin piped to the command, and a terminal under a
pseudo-terminal (the user's size, resized with it), over the daemon's upgraded connection."""

from __future__ import annotations

import time

from tests.terminal import Terminal

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
        terminal.resize_until_seen(45, 150)         # the CLI gets SIGWINCH and sends the new size
        terminal.type("exit 7\r")
        assert terminal.exit_code() == 7
    finally:
        terminal.close()


def test_run_i_feeds_the_containers_stdin_and_ends_it(daemon):
    result = daemon.cli("run", "--rm", "-i", "busybox", "sh", "-c", "echo first; cat; exit 9",
                        input="piped in\n")
    assert result.returncode == 9, result.stderr
    assert result.stdout == "first\npiped in\n"


def test_run_it_then_attach_again_to_the_same_terminal(daemon, remove_after):
    remove_after.append("run-tty")
    command = [*CLI, "--socket", daemon.socket]
    terminal = Terminal([*command, "run", "-it", "--name", "run-tty", "busybox", "sh"],
                        rows=28, cols=101)
    try:
        terminal.expect("# ")            # the first prompt, written before the attach
        terminal.type("tty; stty size; echo pid-$$\r")
        terminal.expect("pid-1")           # the shell is the container's PID 1
        assert b"/dev/pts/0" in terminal.screen and b"28 101" in terminal.screen
    finally:
        terminal.close()                  # the CLI goes; the container's shell stays
    again = Terminal([*command, "attach", "run-tty"], rows=28, cols=101)
    try:
        deadline = time.monotonic() + 60
        while b"back-2" not in again.screen:  # typed before the CLI is attached, it is lost
            assert time.monotonic() < deadline, again.screen
            again.type("echo back-$((1+1))\r")
            again.drain(1)
        again.type("exit 4\r")
        assert again.exit_code() == 4
    finally:
        again.close()
