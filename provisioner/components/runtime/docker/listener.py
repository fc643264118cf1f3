"""runtime/docker: the Docker API's unix socket listener.

Docker's clients half-close a hijacked connection when they have no more stdin to send (the
docker CLI does so at once for `exec` and `run` without -i) and keep reading the output. An
asyncio transport closes the whole connection on the client's EOF unless the protocol asks to
keep it open, and aiohttp's handler does not; so each connection's handler is wrapped here to
keep a hijacked (upgraded) connection open for writing after the client's EOF.
"""

from __future__ import annotations

import asyncio
import os
import weakref

from aiohttp import web

from ..daemon.service import RuntimeDaemon

# Transports whose connection was hijacked (frames.hijack adds them).
HIJACKED: weakref.WeakSet = weakref.WeakSet()
# transport -> what to call when its client half-closes (the end of an attached stdin)
ON_EOF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _HalfClosable(asyncio.Protocol):
    def __init__(self, inner):
        self.inner = inner
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)

    def connection_lost(self, exc) -> None:
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool:
        self.inner.eof_received()
        callback = ON_EOF.pop(self.transport, None)
        if callback is not None:
            callback()
        return self.transport in HIJACKED

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class DockerListener:
    """The Docker API application served on `path`; `close` stops it."""

    def __init__(self, runner: web.AppRunner, server: asyncio.AbstractServer, path: str):
        self.runner = runner
        self.server = server
        self.path = path

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()


async def listen(daemon: RuntimeDaemon, path: str) -> DockerListener:
    from .server import make_docker_app

    runner = web.AppRunner(make_docker_app(daemon), handle_signals=False, shutdown_timeout=2,
                           access_log=None)
    await runner.setup()
    handler_factory = runner.server
    server = await asyncio.get_running_loop().create_unix_server(
        lambda: _HalfClosable(handler_factory()), path)
    os.chmod(path, 0o660)
    return DockerListener(runner, server, path)
