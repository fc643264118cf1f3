"""The docker CLI interactively: `docker exec -i` with piped input, `docker exec -it` on a
terminal (under a pseudo-terminal of the test's), sized and resized as the user's."""

from __future__ import annotations

import os
import time

from tests.terminal import Terminal

from .conftest import DOCKER_CLI


def _docker_env(engine) -> dict:
    return {**os.environ, "DOCKER_HOST": f"unix://{engine.docker_socket}",
            "DOCKER_CONFIG": os.path.join(engine.base, "docker-config"), "TERM": "xterm"}


def _running(engine, remove_after, name: str) -> None:
    remove_after.append(name)
    result = engine.cli("run", "-d", "--name", name, "busybox", "sleep", "1000")
    assert result.returncode == 0, result.stderr


def test_docker_exec_i_pipes_stdin_and_ends_at_its_end(engine, remove_after):
    _running(engine, remove_after, "dx-stdin")
    data = "".join(f"line {n}\n" for n in range(20000))
    result = engine.cli("exec", "-i", "dx-stdin", "cat", input=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    code = engine.cli("exec", "-i", "dx-stdin", "sh", "-c", "read x; echo got-$x >&2; exit $x",
                      input="4\n")
    assert (code.returncode, code.stderr) == (4, "got-4\n")


def test_docker_exec_it_runs_on_a_resizable_terminal(engine, remove_after):
    _running(engine, remove_after, "dx-tty")
    terminal = Terminal([DOCKER_CLI, "exec", "-it", "dx-tty", "sh"], rows=31, cols=97,
                        env=_docker_env(engine))
    try:
        terminal.expect("# ")
        terminal.type("tty; stty size; echo mark-$((40+2))\r")
        terminal.expect("mark-42")
        assert b"/dev/pts/" in terminal.screen
        assert b"31 97" in terminal.screen
        terminal.resize_until_seen(44, 133)       # the CLI calls /exec/{id}/resize
        terminal.type("exit 6\r")
        assert terminal.exit_code() == 6
    finally:
        terminal.close()


def test_docker_run_i_feeds_piped_input_and_ends_it(engine):
    result = engine.cli("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done; exit 7",
                        input="through stdin\n")
    assert result.returncode == 7, result.stderr
    assert result.stdout == "through stdin\ndone\n"


def test_docker_run_it_gives_a_resizable_terminal_from_its_first_prompt(engine):
    terminal = Terminal([DOCKER_CLI, "run", "--rm", "-it", "busybox", "sh"], rows=27, cols=88,
                        env=_docker_env(engine))
    try:
        terminal.expect("# ")              # the first prompt: the CLI attached before start
        terminal.type("tty; stty size; echo pid-$$\r")
        terminal.expect("pid-1")
        assert b"/dev/pts/0" in terminal.screen and b"27 88" in terminal.screen
        terminal.resize_until_seen(40, 120)           # the CLI calls /containers/{id}/resize
        terminal.type("exit 6\r")
        assert terminal.exit_code() == 6
    finally:
        terminal.close()


def test_docker_attach_to_a_restarted_detached_terminal(engine, remove_after):
    remove_after.append("da-tty")
    started = engine.cli("run", "-dit", "--name", "da-tty", "busybox", "sh")
    assert started.returncode == 0, started.stderr
    restarted = engine.cli("restart", "-t", "1", "da-tty")   # a new run gets a new terminal
    assert restarted.returncode == 0, restarted.stderr
    terminal = Terminal([DOCKER_CLI, "attach", "da-tty"], rows=27, cols=88,
                        env=_docker_env(engine))
    try:
        deadline = time.monotonic() + 60
        while b"back-2" not in terminal.screen:   # typed before the CLI attached, it is lost
            assert time.monotonic() < deadline, terminal.screen
            terminal.type("echo back-$((1+1))\r")
            terminal.drain(1)
        terminal.type("exit 5\r")
        assert terminal.exit_code() == 5
    finally:
        terminal.close()
