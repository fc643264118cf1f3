"""Host key pinning against a real SSH handshake (paramiko's server side on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest

from provisioner.engine.hostkeys import HostKeyError, UnreachableError, pin_host_key


class _SSHServer:
    """Answers SSH key exchange on loopback with a given host key, then drops the client."""

    def __init__(self, key: paramiko.PKey):
        self.key = key
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.key)
            try:
                transport.start_server(server=paramiko.ServerInterface())
                # Stay up until the client hangs up: closing as soon as our side of the key
                # exchange is done can cut the client off before it has read our last message.
                deadline = time.monotonic() + 10
                while transport.is_active() and time.monotonic() < deadline:
                    time.sleep(0.02)
            except (paramiko.SSHException, EOFError, OSError):
                pass
            finally:
                transport.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server():
    servers: list[_SSHServer] = []

    def start(key: paramiko.PKey) -> _SSHServer:
        srv = _SSHServer(key)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.close()


def test_first_contact_pins_the_key_in_a_private_file(server, tmp_path: Path):
    srv = server(paramiko.ECDSAKey.generate())
    known = tmp_path / "state" / "known_hosts"
    assert pin_host_key("cp1", "127.0.0.1", srv.port, known) is True
    assert known.stat().st_mode & 0o777 == 0o600
    assert f"[127.0.0.1]:{srv.port} ecdsa-sha2-nistp256 " in known.read_text()


def test_same_key_again_changes_nothing(server, tmp_path: Path):
    srv = server(paramiko.ECDSAKey.generate())
    known = tmp_path / "known_hosts"
    pin_host_key("cp1", "127.0.0.1", srv.port, known)
    before = known.read_bytes()
    assert pin_host_key("cp1", "127.0.0.1", srv.port, known) is False
    assert known.read_bytes() == before


def test_a_changed_key_is_refused_with_what_to_do(server, tmp_path: Path):
    known = tmp_path / "known_hosts"
    srv = server(paramiko.ECDSAKey.generate())
    pin_host_key("cp1", "127.0.0.1", srv.port, known)
    srv.key = paramiko.ECDSAKey.generate()  # the host was rebuilt, or someone answers in its place
    with pytest.raises(HostKeyError) as raised:
        pin_host_key("cp1", "127.0.0.1", srv.port, known)
    message = raised.value.message
    assert message.startswith(f"host cp1: SSH host key for [127.0.0.1]:{srv.port} changed")
    assert f"remove its line from {known}" in message


def test_an_unreachable_host_is_named(tmp_path: Path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    with pytest.raises(UnreachableError) as raised:
        pin_host_key("worker3", "127.0.0.1", port, tmp_path / "known_hosts")
    assert raised.value.message.startswith(f"host worker3: cannot reach 127.0.0.1:{port} over SSH")


def test_a_port_that_does_not_speak_ssh_is_named(tmp_path: Path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def answer_http() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_http, daemon=True).start()
    try:
        with pytest.raises(UnreachableError) as raised:
            pin_host_key("cp1", "127.0.0.1", port, tmp_path / "known_hosts")
    finally:
        listener.close()
    assert "does not speak SSH" in raised.value.message
    assert not (tmp_path / "known_hosts").exists()
