"""kubelet: `kubectl exec -i/-t` (and the Python client's stream with stdin or a TTY) and
`kubectl attach` / `kubectl run -it` over WebSocket, relayed to the container runtime's
interactive exec and attach.

The client speaks v5.channel.k8s.io (or v4): each binary message is one channel byte and its
data; 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 resize ({"Width", "Height"}), and in v5
255 to close a channel (kubectl sends [255, 0] at the end of its stdin). The runtime daemon's
upgraded exec (runtime/iostream.py) numbers its channels the same way, so messages become frames
and frames messages one for one; only the end is translated into the Status kubectl reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from ..runtime import iostream

# client channels passed on to the runtime as they are
CLIENT_CHANNELS = (iostream.STDIN, iostream.RESIZE, iostream.CLOSE)


async def open_stream(socket_path: str, body: dict,
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The runtime daemon's interactive exec of `body` (cmd, stdin, tty), or with
    "attach": true the container's own stdin and terminal: the upgraded connection. Raises
    RuntimeError with the daemon's message when it refuses."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 21)
    container = body.pop("container")
    verb = "attach" if body.pop("attach", False) else "exec"
    payload = json.dumps(body).encode()
    writer.write((f"POST /v1/containers/{container}/{verb} HTTP/1.1\r\nHost: localhost\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                  f"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n").encode() + payload)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    if status == 101:
        return reader, writer
    length = next((int(value) for name, _, value in (line.partition(":") for line in lines[1:])
                   if name.strip().lower() == "content-length"), 0)
    body_bytes = await reader.readexactly(length) if length else b""
    writer.close()
    try:
        message = json.loads(body_bytes)["message"]
    except (ValueError, KeyError, TypeError):
        message = body_bytes.decode(errors="replace") or lines[0]
    raise RuntimeError(message)


# what open_stream raises when the runtime cannot run the exec (refused, gone, cut off)
OPEN_ERRORS = (OSError, RuntimeError, asyncio.IncompleteReadError, ValueError)


def failure(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message}


def exit_status(end: dict) -> dict:
    """The runtime's end frame as the Status kubectl reads on channel 3."""
    if "error" in end:
        return failure(end["error"])
    code = end.get("exit_code")
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


async def relay_output(reader: asyncio.StreamReader,
                       deliver: Callable[[int, bytes], Awaitable[None]]) -> dict:
    """The runtime's frames until the exec ends: each output frame to `deliver(channel,
    payload)`; the Status of its end (a Failure if the runtime ended without one)."""
    status = failure("the container runtime ended the exec without a status")
    decoder = iostream.FrameDecoder()
    while data := await reader.read(65536):
        for channel, payload in decoder.feed(data):
            if channel == iostream.STATUS:
                status = exit_status(json.loads(payload))
            else:
                await deliver(channel, payload)
    return status


async def relay(ws: web.WebSocketResponse, socket_path: str, body: dict,
                wanted: dict[int, bool]) -> None:
    """Run the exec of `body` (or attach) and carry it between `ws` and the runtime until it
    ends."""
    try:
        reader, writer = await open_stream(socket_path, body)
    except OPEN_ERRORS as error:
        await ws.send_bytes(bytes([iostream.STATUS]) + json.dumps(failure(str(error))).encode())
        await ws.close()
        return
    inbound = asyncio.get_running_loop().create_task(_client_to_runtime(ws, writer))

    async def to_client(channel: int, payload: bytes) -> None:
        if wanted.get(channel):
            await ws.send_bytes(bytes([channel]) + payload)

    try:
        status = await relay_output(reader, to_client)
        await ws.send_bytes(bytes([iostream.STATUS]) + json.dumps(status).encode())
    except (ConnectionError, RuntimeError):
        pass             # the client went away: closing our side hangs the process up
    finally:
        inbound.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()


async def _client_to_runtime(ws: web.WebSocketResponse, writer: asyncio.StreamWriter) -> None:
    async for message in ws:
        if message.type != WSMsgType.BINARY or not message.data:
            continue
        channel = message.data[0]
        if channel in CLIENT_CHANNELS:
            writer.write(iostream.frame(channel, message.data[1:]))
            await writer.drain()
    writer.close()           # the client closed: the runtime hangs the process up
