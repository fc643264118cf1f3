"""A container's own stdin and terminal (container/console.py, consolelink.py): the console holds
them, clients attach to its socket with iostream frames, the terminal is the container init's
controlling terminal from the container's devpts, and its output reaches the log."""

import os
import socket
import time

from provisioner.components.runtime import iostream
from provisioner.components.runtime.container import api, console

from .conftest import read_log


def _attach(spec) -> iostream.StreamConnection:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(console.socket_paths(spec.state_dir)[1])
    sock.settimeout(30)
    return iostream.StreamConnection(sock)


def _read_until_end(connection, timeout: float = 30) -> tuple[bytes, dict]:
    output, end = b"", None
    deadline = time.monotonic() + timeout
    while end is None:
        assert time.monotonic() < deadline, output
        frames = connection.receive()
        assert frames, f"the stream ended without a status; output so far {output!r}"
        for channel, payload in frames:
            if channel == iostream.STDOUT:
                output += payload
            elif channel == iostream.STATUS:
                import json
                end = json.loads(payload)
    return output, end


def _start_with_console(spec, terminal: bool, stdin_once: bool = True):
    spec.console_socket = console.launch(spec.state_dir, terminal=terminal,
                                         stdin_once=stdin_once, log_path=spec.log_path)
    return api.start(spec)


def test_a_terminal_container_is_attached_interactively(make_spec):
    spec = make_spec(["sh"], env=["PATH=/bin", "PS1=prompt$ "])
    _start_with_console(spec, terminal=True)
    connection = _attach(spec)
    connection.resize(25, 90)
    connection.send_stdin(b"tty; stty size; echo $$; exit 3\n")
    output, end = _read_until_end(connection)
    assert b"prompt$ " in output                 # written before anyone attached: kept
    assert b"/dev/pts/0" in output and b"25 90" in output
    assert b"\n1\r\n" in output.replace(b"\r\r", b"\r")     # the shell is the container's PID 1
    assert end == {"exit_code": 3}
    with open(spec.log_path, "rb") as log:      # bytes: a terminal's lines hold \r
        records = [record.split(b" ", 3) for record in log.read().split(b"\n") if record]
    assert [b"stdout", b"F", b"/dev/pts/0"] in [record[1:] for record in records]
    assert any(record[3].startswith(b"prompt$ ") for record in records)
    connection.close()


def test_stdin_once_ends_the_containers_input_when_the_client_closes_it(make_spec):
    spec = make_spec(["sh", "-c", "cat; echo after-eof"])
    _start_with_console(spec, terminal=False)
    connection = _attach(spec)
    connection.send_stdin(b"hello\n")
    connection.close_stdin()
    final = api.wait(spec.state_dir, 30)
    assert final.exit_code == 0
    assert read_log(spec).splitlines() == ["hello", "after-eof"]
    connection.close()
    deadline = time.monotonic() + 30
    while os.path.exists(console.socket_paths(spec.state_dir)[1]):   # the console ended
        assert time.monotonic() < deadline
        time.sleep(0.05)
