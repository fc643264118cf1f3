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
