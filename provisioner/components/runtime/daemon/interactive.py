"""runtime/daemon: interactive streams on the event loop: an exec with stdin and/or a TTY, and the
hijacked connection of the daemon's own API that carries it (iostream's frames).

`AsyncExec` wraps the core's RunningExec (container/execio.py) for asyncio: output arrives through
`outputs()`, input goes through `write_stdin` with flow control (a full pipe pauses the sender),
and `wait` gives the exit code. The Docker API (docker/execs.py) and the daemon's own exec route
(`serve_hijacked`, below) both build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .. import iostream
from ..container import console, execio
from ..container.errors import ContainerError
from ..container.spec import Process
from .errors import DaemonError


class FdWriter:
    """Non-blocking writes to a pipe or terminal from the event loop; `drain` waits until the
    kernel took everything (a process that does not read holds its sender back)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = bytearray()
        self.drained = asyncio.Event()
        self.drained.set()
        self.broken = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self.broken or not data:
            return
        self.pending += data
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                self.pending = self.pending[os.write(self.fd, self.pending):]
        except BlockingIOError:
            if self.drained.is_set():
                self.drained.clear()
                loop.add_writer(self.fd, self._writable)
            return
        except OSError:        # the reader is gone (EPIPE, EIO): input is dropped, as a pipe does
            self.broken = True
            self.pending.clear()
        if not self.drained.is_set():
            loop.remove_writer(self.fd)
        self.drained.set()

    def _writable(self) -> None:
        self._flush()

    async def drain(self) -> None:
        await self.drained.wait()

    def abandon(self) -> None:
        if not self.drained.is_set():
            asyncio.get_running_loop().remove_writer(self.fd)
            self.drained.set()
        self.pending.clear()
        self.broken = True


class AsyncExec:
    def __init__(self, running: execio.RunningExec):
        self.running = running
        self.stdin = FdWriter(running.stdin_fd) if running.stdin_fd is not None else None
        # outputs() state: the fds still read (fd -> stream name) and where their data goes
        self._reading: dict[int, str] = {}
        self._queue: asyncio.Queue | None = None

    @classmethod
    async def start(cls, state_dir: str, process: Process, stdin: bool, tty: bool,
                    size: tuple[int, int] | None = None) -> "AsyncExec":
        try:
            running = await asyncio.get_running_loop().run_in_executor(
                None, lambda: execio.start(state_dir, process, stdin=stdin, tty=tty, size=size))
        except ContainerError as error:
            raise DaemonError(error.message) from None
        return cls(running)

    @property
    def tty(self) -> bool:
        return self.running.tty_fd is not None

    async def outputs(self) -> AsyncIterator[tuple[str, bytes]]:
        """("stdout"|"stderr", bytes) as the process writes them, until every output ended."""
        loop = asyncio.get_running_loop()
        queue = self._queue = asyncio.Queue()

        def readable(fd: int, name: str) -> None:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:   # EIO: the terminal's last holder let it go
                chunk = b""
            if chunk:
                queue.put_nowait((name, chunk))
            else:
                self._stop_reading(fd)

        self._reading = dict(self.running.output_fds)
        for fd, name in self._reading.items():
            os.set_blocking(fd, False)
            loop.add_reader(fd, readable, fd, name)
        open_count = len(self._reading)
        try:
            while open_count:
                name, chunk = await queue.get()
                if not chunk:
                    open_count -= 1
                    continue
                yield name, chunk
        finally:
            for fd in list(self._reading):
                loop.remove_reader(fd)
            self._reading.clear()

    def _stop_reading(self, fd: int) -> None:
        """That output ended (or is about to be closed): no reader is left on a closed fd,
        where the event loop would never report it again and a reused fd number would meet
        a stale registration."""
        name = self._reading.pop(fd, None)
        if name is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        if self._queue is not None:
            self._queue.put_nowait((name, b""))

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.write(data)
            await self.stdin.drain()

    async def close_stdin(self) -> None:
        if self.stdin is None:
            return
        await self.stdin.drain()
        if self.tty:
            self.stdin.write(b"\x04")      # ^D: the terminal's end of input
            return
        self.stdin.abandon()
        self.stdin = None
        self.running.close_stdin()

    def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(OSError):
            self.running.resize(rows, cols)

    def hang_up(self) -> None:
        """The client went away: close its input (a terminal hangs its process up)."""
        if self.stdin is not None:
            self.stdin.abandon()
            self.stdin = None
        if self.tty:
            fd, self.running.tty_fd = self.running.tty_fd, None
            self.running.stdin_fd = None
            self._stop_reading(fd)         # before the close: its output ends here
            with contextlib.suppress(OSError):
                os.close(fd)
        else:
            self.running.close_stdin()

    async def wait(self) -> int:
        """The exit code (raises DaemonError when the process could not be started)."""
        if self.stdin is not None:
            self.stdin.abandon()
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.running.wait)
        except ContainerError as error:
            raise DaemonError(error.message) from None


# -- the daemon's own hijacked connection ---------------------------------------------------

class _FrameParser:
    """aiohttp hands every byte after the upgrade to `feed_data`: frames go to `on_frame`."""

    def __init__(self, on_frame: Callable[[int, bytes], None], on_eof: Callable[[], None]):
        self.decoder = iostream.FrameDecoder()
        self.on_frame = on_frame
        self.on_eof = on_eof

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        try:
            frames = self.decoder.feed(data)
        except ValueError:
            self.on_eof()
            return True, b""
        for channel, payload in frames:
            self.on_frame(channel, payload)
        return False, b""

    def feed_eof(self) -> None:
        self.on_eof()


async def upgrade(request: web.Request) -> web.StreamResponse:
    """Answer 101 and keep the connection for frames; the stream's end closes it."""
    response = web.StreamResponse(status=101, reason="Switching Protocols",
                                  headers=iostream.UPGRADE_HEADERS)
    response.force_close()
    await response.prepare(request)
    return response


def wants_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "tcp"


async def serve_hijacked(request: web.Request,
                         begin: Callable[[], Awaitable[AsyncExec]]) -> web.StreamResponse:
    """Run the exec `begin` starts (errors before it started are plain HTTP errors) and carry
    it over the upgraded connection until it ends with a status frame."""
    session = await begin()
    response = await upgrade(request)
    inputs: asyncio.Queue = asyncio.Queue()
    request.protocol.set_parser(_FrameParser(  # type: ignore[union-attr, arg-type]
        lambda channel, payload: inputs.put_nowait((channel, payload)),
        lambda: inputs.put_nowait(None)))
    feeder = asyncio.get_running_loop().create_task(_feed(session, inputs))
    status: dict
    try:
        async for stream, data in session.outputs():
            await response.write(iostream.frame(iostream.CHANNEL_OF_STREAM[stream], data))
        feeder.cancel()
        try:
            status = {"exit_code": await session.wait()}
        except DaemonError as error:
            status = {"error": error.message}
        await response.write(iostream.frame(iostream.STATUS, json.dumps(status).encode()))
    except (ConnectionError, RuntimeError):
        session.hang_up()
        await session.wait()
    finally:
        feeder.cancel()
    return response


async def _feed(session: AsyncExec, inputs: asyncio.Queue) -> None:
    while True:
        item = await inputs.get()
        if item is None:            # the client went away
            session.hang_up()
            return
        channel, payload = item
        if channel == iostream.STDIN:
            await session.write_stdin(payload)
        elif channel == iostream.RESIZE:
            size = iostream.parse_resize(payload)
            if size:
                session.resize(*size)
        elif channel == iostream.CLOSE and payload[:1] in (b"", bytes([iostream.STDIN])):
            await session.close_stdin()


# -- attach: the container's own stdin and terminal (container/console.py) -------------------

def console_path(state_dir: str) -> str | None:
    """The attach socket of a container's console, when it has one running."""
    path = console.socket_paths(state_dir)[1]
    return path if os.path.exists(path) else None


async def serve_attach(request: web.Request, containers, key: str,
                       logs: bool = False) -> web.StreamResponse:
    """Attach over the upgraded connection: a terminal's console carries everything (output,
    input, resize, the exit code); otherwise the output is the log followed from now on, with
    stdin passed to the console of a container that has one, and the exit code last."""
    record = containers.find(key)
    state_dir = containers.directory(record)
    path = console_path(state_dir)
    if (record.tty or record.stdin_open) and path is None and containers.is_running(record):
        raise DaemonError(f"container {record.name} has no console to attach to")
    reader = writer = None
    if path is not None:
        sock = await asyncio.to_thread(console.connect_attach, state_dir)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
    response = await upgrade(request)
    # the parser right after the answer, with no await between: bytes the client sends in
    # between are otherwise lost by aiohttp 3.14
    inputs: asyncio.Queue = asyncio.Queue()
    request.protocol.set_parser(_FrameParser(  # type: ignore[union-attr, arg-type]
        lambda channel, payload: inputs.put_nowait((channel, payload)),
        lambda: inputs.put_nowait(None)))
    loop = asyncio.get_running_loop()
    feeder = loop.create_task(_forward_input(inputs, writer))
    try:
        if record.tty and reader is not None:
            while data := await reader.read(65536):
                await response.write(data)
        else:
            await _follow_output(containers, record, response, logs)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        feeder.cancel()
        if writer is not None:
            writer.close()
    return response


async def _forward_input(inputs: asyncio.Queue, writer: asyncio.StreamWriter | None) -> None:
    while (item := await inputs.get()) is not None:
        channel, payload = item
        if writer is not None and channel in (iostream.STDIN, iostream.RESIZE, iostream.CLOSE):
            writer.write(iostream.frame(channel, payload))
            await writer.drain()


async def _follow_output(containers, record, response: web.StreamResponse, logs: bool) -> None:
    """The log from now on (from its start with `logs`: a `run` attaching to what it started)."""
    from . import logs as logfiles

    def running() -> bool:
        current = containers.records.get(record.id)
        return current is not None and containers.status(current).status != "exited"

    async for entry in logfiles.follow(containers.log_path(record), running,
                                       None if logs else 0):
        await response.write(iostream.frame(iostream.CHANNEL_OF_STREAM[entry.stream],
                                            entry.data))
    code = containers.status(record).exit_code
    end = {"exit_code": code} if code is not None else {"error": "the container is gone"}
    await response.write(iostream.frame(iostream.STATUS, json.dumps(end).encode()))
