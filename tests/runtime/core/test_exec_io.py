"""Interactive exec in the core (container/execio.py): a stdin pipe, a terminal from the
container's own devpts that is the process's controlling terminal, resize, hang-up."""

import io
import os
import select
import time

from provisioner.components.runtime.container import api, execio
from provisioner.components.runtime.container.spec import Process


def _started(make_spec):
    spec = make_spec(["sleep", "600"])
    api.start(spec)
    return spec


def _read_until(fd: int, text: bytes, timeout: float = 30) -> bytes:
    """What the terminal showed up to and including `text` (fails after `timeout`)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"terminal never showed {text!r}; it showed {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"terminal closed before showing {text!r}; it showed {seen!r}"
            seen += chunk
    return seen


def test_stdin_reaches_the_process_and_its_end_is_eof(make_spec):
    spec = _started(make_spec)
    out, err = io.BytesIO(), io.BytesIO()
    data = b"line one\n" + b"x" * 200_000 + b"\nlast line without newline"
    code = api.exec_process(spec.state_dir, Process(args=["sh", "-c", "cat; echo done >&2"],
                                                    env=["PATH=/bin"]),
                            out, err, stdin=io.BytesIO(data))
    assert code == 0
    assert out.getvalue() == data
    assert err.getvalue() == b"done\n"


def test_without_stdin_the_process_reads_eof_at_once(make_spec):
    spec = _started(make_spec)
    out = io.BytesIO()
    code = api.exec_process(spec.state_dir, Process(args=["sh", "-c", "cat; echo end"],
                                                    env=["PATH=/bin"]), out, io.BytesIO())
    assert (code, out.getvalue()) == (0, b"end\n")


def test_a_tty_exec_has_a_controlling_terminal_of_the_containers_devpts(make_spec):
    spec = _started(make_spec)
    out = io.BytesIO()
    code = api.exec_process(
        spec.state_dir,
        Process(args=["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; "
                                  "echo err >&2; stat -c %i /dev/pts/ptmx; ls /dev/pts"],
                env=["PATH=/bin"]), out, None, tty=True)
    assert code == 0
    lines = out.getvalue().decode().replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1:3] == ["all-tty", "err"]      # stderr is the terminal too
    # the container's own devpts instance: its first pty, not one of the host's
    assert lines[0] == "/dev/pts/0"


def test_a_tty_session_is_interactive_resizable_and_hangs_up_on_close(make_spec):
    spec = _started(make_spec)
    running = execio.start(spec.state_dir, Process(args=["sh"], env=["PATH=/bin", "PS1=$ "]),
                           stdin=True, tty=True, size=(24, 80))
    try:
        os.write(running.stdin_fd, b"stty size; echo $((6*7))\n")
        shown = _read_until(running.tty_fd, b"42")
        assert b"24 80" in shown
        running.resize(50, 132)
        os.write(running.stdin_fd, b"stty size\n")
        assert b"50 132" in _read_until(running.tty_fd, b"50 132")
        os.write(running.stdin_fd, b"exit 3\n")
        _read_until(running.tty_fd, b"exit 3")
        assert running.wait() == 3
    finally:
        running.close()


def test_closing_the_terminal_hangs_the_process_up(make_spec):
    spec = _started(make_spec)
    running = execio.start(spec.state_dir, Process(args=["sh", "-c", "echo ready; sleep 600"],
                                                   env=["PATH=/bin"]), stdin=True, tty=True)
    _read_until(running.tty_fd, b"ready")
    os.close(running.tty_fd)
    running.tty_fd = running.stdin_fd = None
    assert running.wait() == 129          # SIGHUP, as a closed terminal sends
