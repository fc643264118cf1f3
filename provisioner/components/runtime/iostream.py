"""runtime: the framing of an interactive stream on the daemon's own API (exec -i/-t, attach).

After the daemon answers an exec or attach request with `101 Switching Protocols` (`Upgrade: tcp`),
both sides send frames: one channel byte, the payload length as a big-endian uint32, the payload.
The channels are Kubernetes' (as v5.channel.k8s.io numbers them), so the kubelet relays them as
they are: 0 stdin, 1 stdout, 2 stderr, 3 the end (JSON: {"exit_code": N} or {"error": message}),
4 a terminal resize (JSON: {"Width": cols, "Height": rows}), 255 close (payload: the channel
closed, 0 for end of stdin). Shared by the synchronous client and the daemon; standard library
only.
"""

from __future__ import annotations

import json
import socket
import struct

STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHANNEL_OF_STREAM = {"stdout": STDOUT, "stderr": STDERR}
HEADER = struct.Struct(">BL")
UPGRADE_HEADERS = {"Connection": "Upgrade", "Upgrade": "tcp"}
MAX_FRAME = 1 << 20


def frame(channel: int, payload: bytes) -> bytes:
    return HEADER.pack(channel, len(payload)) + payload


def resize_frame(rows: int, cols: int) -> bytes:
    return frame(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """(rows, cols) from a resize payload; None when it is not one."""
    try:
        size = json.loads(payload)
        return int(size["Height"]), int(size["Width"])
    except (ValueError, KeyError, TypeError):
        return None


class FrameDecoder:
    """Bytes in, complete (channel, payload) frames out, whatever the bytes' boundaries."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            channel, length = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise ValueError(f"stream frame of {length} bytes is too large")
            if len(self.buffer) < HEADER.size + length:
                break
            frames.append((channel, bytes(self.buffer[HEADER.size:HEADER.size + length])))
            del self.buffer[:HEADER.size + length]
        return frames


class UpgradeRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class StreamConnection:
    """The client side of an upgraded connection (a connected socket): send input, read frames."""

    def __init__(self, sock: socket.socket, leftover: bytes = b""):
        self.sock = sock
        self.decoder = FrameDecoder()
        self.ready = self.decoder.feed(leftover) if leftover else []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_stdin(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_FRAME):
            self.sock.sendall(frame(STDIN, data[start:start + MAX_FRAME]))

    def close_stdin(self) -> None:
        self.sock.sendall(frame(CLOSE, bytes([STDIN])))

    def resize(self, rows: int, cols: int) -> None:
        self.sock.sendall(resize_frame(rows, cols))

    def receive(self) -> list[tuple[int, bytes]]:
        """The frames that arrived (blocks for some); [] once the connection has ended."""
        if self.ready:
            frames, self.ready = self.ready, []
            return frames
        while True:
            data = self.sock.recv(65536)
            if not data:
                return []
            frames = self.decoder.feed(data)
            if frames:
                return frames

    def close(self) -> None:
        self.sock.close()


def open_upgraded(sock: socket.socket, method: str, path: str, body: dict) -> StreamConnection:
    """Send a JSON request asking for the upgrade on a connected socket; the stream once the
    server switched protocols, else UpgradeRefused with the server's message."""
    payload = json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n" +
            "".join(f"{k}: {v}\r\n" for k, v in UPGRADE_HEADERS.items()) + "\r\n")
    sock.sendall(head.encode() + payload)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise UpgradeRefused(502, "the daemon closed the connection without an answer")
        received += chunk
    head_bytes, _, rest = received.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    if status == 101:
        return StreamConnection(sock, rest)
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    try:
        message = json.loads(rest)["message"]
    except (ValueError, KeyError, TypeError):
        message = rest.decode(errors="replace").strip() or lines[0]
    raise UpgradeRefused(status, message)
