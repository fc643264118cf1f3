"""runtime/docker: attach to a container's own stdin and terminal (`docker run -it`, `docker run
-i` with piped input, `docker attach`), and `/containers/{id}/resize`.

The container's console (container/console.py) holds its stdin and terminal; here a hijacked
Docker connection is joined to the console's attach socket: the client's raw bytes become stdin
frames (its half-close the end of stdin, which closes the container's when created StdinOnce),
and with a TTY the console's output frames become raw output. The docker CLI attaches before it
starts the container, so the console is waited for until the start has made it.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from .. import iostream
from ..container import console
from ..daemon.interactive import console_path
from .errors import DockerError
from .routing import daemon_of, route

CONSOLE_WAIT_SECONDS = 120


async def open_console(containers, record) -> tuple[asyncio.StreamReader,
                                                    asyncio.StreamWriter] | None:
    """A connection to the container's console, once its start made one; None when the
    container went away or ended first."""
    state_dir = containers.directory(record)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONSOLE_WAIT_SECONDS
    while console_path(state_dir) is None:
        current = containers.records.get(record.id)
        if current is None or loop.time() > deadline or (
                current.started_once and not containers.is_running(current)):
            return None
        await asyncio.sleep(0.05)
    try:
        sock = await asyncio.to_thread(console.connect_attach, state_dir)
    except OSError:
        return None
    return await asyncio.open_unix_connection(sock=sock)


async def stdin_to_console(stdin: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
    """The client's raw stdin as frames, then the end of stdin."""
    while (data := await stdin.get()) is not None:
        writer.write(iostream.frame(iostream.STDIN, data))
        await writer.drain()
    writer.write(iostream.frame(iostream.CLOSE, bytes([iostream.STDIN])))
    await writer.drain()


async def attach_terminal(containers, record, response: web.StreamResponse,
                          stdin: asyncio.Queue | None) -> None:
    """A TTY container's output raw, until it exits; the client's input to its terminal."""
    connection = await open_console(containers, record)
    if connection is None:
        return
    reader, writer = connection
    feeder = asyncio.get_running_loop().create_task(stdin_to_console(stdin, writer)) \
        if stdin is not None else None
    decoder = iostream.FrameDecoder()
    try:
        while data := await reader.read(65536):
            for channel, payload in decoder.feed(data):
                if channel == iostream.STDOUT:
                    await response.write(payload)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        if feeder is not None:
            feeder.cancel()
        writer.close()


async def feed_stdin(containers, record, stdin: asyncio.Queue) -> None:
    """A container without a TTY but with an open stdin: the client's input to it."""
    connection = await open_console(containers, record)
    if connection is None:
        return
    _, writer = connection
    try:
        await stdin_to_console(stdin, writer)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        writer.close()


@route("POST", "/containers/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    from .containers import record_of

    record = record_of(request)
    containers = daemon_of(request).containers
    try:
        rows, cols = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise DockerError(400, "resize needs numeric h and w") from None
    if not containers.is_running(record):
        raise DockerError(409, f"Container {record.id} is not running")
    state_dir = containers.directory(record)
    if record.tty and console_path(state_dir) is not None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(console.resize, state_dir, rows, cols)
    return web.Response(status=200)
