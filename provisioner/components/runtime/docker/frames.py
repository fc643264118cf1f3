"""runtime/docker: Docker's stream framing, and the hijacked connection exec/attach answer on.

Without a TTY, Docker multiplexes stdout and stderr on one stream: each frame is an 8-byte
header (stream id: 0 stdin, 1 stdout, 2 stderr; three zero bytes; the payload length as a
big-endian uint32) and the payload. Exec start and attach "hijack" the HTTP connection: the
client asks `Upgrade: tcp`, the answer is `101 UPGRADED` and from then on the socket carries raw
frames both ways; the connection closes when the process ends. What the client sends (stdin) is
raw bytes, never framed; its half-close is the end of stdin.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

from .listener import HIJACKED, ON_EOF

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BxxxL", STREAM_IDS[stream], len(data)) + data


async def hijack(request: web.Request, tty: bool) -> web.StreamResponse:
    """Answer 101 (or 200 to a client that did not ask to upgrade) and keep the socket raw."""
    upgrade = "upgrade" in request.headers.get("Connection", "").lower()
    headers = {"Content-Type": RAW if tty else MULTIPLEXED}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    response = web.StreamResponse(status=101 if upgrade else 200, reason="UPGRADED" if
                                  upgrade else "OK", headers=headers)
    response.force_close()            # the stream's end is the connection's end
    if request.transport is not None:
        HIJACKED.add(request.transport)   # the client may half-close it and still read
    await response.prepare(request)       # a StreamResponse sends its headers at once
    return response


class _RawInput:
    """aiohttp hands every byte after the upgrade to `feed_data` (the client's stdin)."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(data)
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


def stdin_of(request: web.Request) -> asyncio.Queue:
    """A hijacked connection's input: chunks of bytes, then None at its end (a half-close or
    the connection's end)."""
    queue: asyncio.Queue = asyncio.Queue()
    if request.transport is not None:
        ON_EOF[request.transport] = lambda: queue.put_nowait(None)
    request.protocol.set_parser(_RawInput(queue))  # type: ignore[union-attr, arg-type]
    return queue
