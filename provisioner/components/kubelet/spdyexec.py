"""kubelet: /exec and /attach over SPDY/3.1, the remotecommand protocol of clients that do not use
WebSockets (kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, older kubectl, client-go tools).

server.py sends a request here when it asks for `Upgrade: SPDY/3.1`; WebSocket requests stay with
execstream.py. The client offers versions in `X-Stream-Protocol-Version` headers, in its order
of preference; we answer the first one we speak in the 101's header of that name (none offered:
the unversioned channel.k8s.io). Then, over spdysession's Session, the client opens one stream
per part of the command, named by the header `streamType`: `error` always, `stdin`, `stdout`,
`stderr` as the query's stdin/stdout/stderr ask (no stderr with a tty), and `resize` with a tty
from v3 on. Once all of them are open the command starts (the runtime's interactive exec or
attach, execstream.open_stream), and bytes flow: stdin to the process (its end closes the
process's stdin), output to the stdout and stderr streams, JSON terminal sizes
({"Width", "Height"}, one after another) from the resize stream to the terminal. At the end the
output streams are finished, the error stream says how it ended and the session closes: from v4
a metav1.Status JSON (Success, or Failure with reason NonZeroExitCode and the code in
details.causes), before it only a failure's message. v5 over SPDY is v4.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from aiohttp import web

from ..runtime import iostream
from . import execstream
from .portforward import _AlreadySent, _RawConnection  # port-forward's plain SPDY upgrade
from .spdysession import Session, Stream, StreamClosed

log = logging.getLogger("kubelet.spdyexec")
SPDY_UPGRADE = "SPDY/3.1"
V1 = "channel.k8s.io"
# what we speak, best first; how each writes the end on the error stream and whether it resizes
PROTOCOLS = {"v5.channel.k8s.io": ("status", True), "v4.channel.k8s.io": ("status", True),
             "v3.channel.k8s.io": ("message", True), "v2.channel.k8s.io": ("message", False),
             V1: ("message", False)}
STREAM_CREATION_TIMEOUT = 30.0
STREAM_TYPES = ("error", "stdin", "stdout", "stderr", "resize")
MAX_RESIZE_MESSAGE = 4096
OUTPUT_STREAMS = {iostream.STDOUT: "stdout", iostream.STDERR: "stderr"}


def speaks_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == SPDY_UPGRADE.lower()


def negotiate(request: web.Request) -> str:
    """The client's most preferred version that we speak; 403 when there is none."""
    offered = [p.strip() for value in request.headers.getall("X-Stream-Protocol-Version", [])
               for p in value.split(",") if p.strip()]
    if not offered:
        return V1
    chosen = next((p for p in offered if p in PROTOCOLS), None)
    if chosen is None:
        raise web.HTTPForbidden(
            headers={"X-Accepted-Stream-Protocol-Versions": ", ".join(PROTOCOLS)},
            text=f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
                 f"server accepts {list(PROTOCOLS)}")
    return chosen


@dataclass(frozen=True)
class Options:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query) -> "Options":
        stdin, stdout, stderr, tty = (query.get(name) in ("1", "true")
                                      for name in ("stdin", "stdout", "stderr", "tty"))
        stderr = stderr and not tty   # a terminal has one output: stderr is on stdout
        if not (stdin or stdout or stderr):
            raise web.HTTPBadRequest(text="you must specify at least 1 of stdin, stdout, stderr")
        return cls(stdin, stdout, stderr, tty)


async def serve(request: web.Request, socket_path: str, body: dict) -> web.StreamResponse:
    """Answer the upgrade and run `body` (execstream.open_stream's) over the session until the
    command ends or the client goes away."""
    protocol = negotiate(request)
    command = RemoteCommand(protocol, Options.from_query(request.query))
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        raise web.HTTPBadRequest(text="unable to upgrade: missing upgrade headers in request "
                                      "(Connection: Upgrade, Upgrade: SPDY/3.1)")
    if "attach" not in body:
        body = {**body, "stdin": command.options.stdin, "tty": command.options.tty}
    raw = _RawConnection(request)
    raw.session = command.session = Session(raw.send, command.on_stream)
    await request.writer.write((
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        f"Upgrade: {SPDY_UPGRADE}\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n"
    ).encode("latin-1"))
    request.protocol.set_parser(raw)  # type: ignore[arg-type]  # every later client byte
    run = asyncio.ensure_future(command.run(socket_path, body))
    client_gone = asyncio.ensure_future(raw.ended.wait())
    try:
        await asyncio.wait([run, client_gone], return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            raw.session.feed_eof()    # the command hangs up: its streams are gone
            await run
    finally:
        run.cancel()
        client_gone.cancel()
        await raw.session.close()
        request.protocol.force_close()
    return _AlreadySent(status=101)


class RemoteCommand:
    """One exec or attach: collects the client's streams, then carries the command's bytes."""

    def __init__(self, protocol: str, options: Options):
        self.protocol = protocol
        self.status_format, resizes = PROTOCOLS[protocol]
        self.options = options
        self.expected = {"error"} | {name for name in ("stdin", "stdout", "stderr")
                                     if getattr(options, name)}
        if options.tty and resizes:
            self.expected.add("resize")
        self.streams: dict[str, Stream] = {}
        self.complete = asyncio.Event()
        self.session: Session | None = None

    def on_stream(self, stream: Stream) -> bool:
        kind = stream.header("streamType")
        if kind not in STREAM_TYPES or kind in self.streams:
            log.info("refusing exec stream %d: streamType %r", stream.id, kind)
            return False
        self.streams[kind] = stream
        if self.expected <= self.streams.keys():
            self.complete.set()
        return True

    async def run(self, socket_path: str, body: dict) -> None:
        assert self.session is not None
        waits = [asyncio.ensure_future(self.complete.wait()),
                 asyncio.ensure_future(self.session.closed.wait())]
        try:
            await asyncio.wait(waits, timeout=STREAM_CREATION_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self.complete.is_set():
            log.info("no exec: the client did not open streams %s",
                     sorted(self.expected - self.streams.keys()))
            return
        try:
            reader, writer = await execstream.open_stream(socket_path, dict(body))
        except execstream.OPEN_ERRORS as error:
            await self._finish(execstream.failure(str(error)))
            return
        pumps = [asyncio.ensure_future(work) for work in (
            self._stdin_to_runtime(writer), self._resizes_to_runtime(writer),
            self._hang_up_when_client_leaves(writer))]

        async def to_client(channel: int, payload: bytes) -> None:
            if (stream := self.streams.get(OUTPUT_STREAMS.get(channel, ""))):
                await stream.write(payload)

        try:
            await self._finish(await execstream.relay_output(reader, to_client))
        except (StreamClosed, ConnectionError):
            pass             # the client went away: closing our side hangs the process up
        finally:
            for pump in pumps:
                pump.cancel()
            writer.close()

    async def _finish(self, status: dict) -> None:
        """Finish the output streams, then say on the error stream how the command ended."""
        for name in ("stdout", "stderr"):
            if (stream := self.streams.get(name)) is not None:
                await stream.close()
        error = self.streams["error"]
        if self.status_format == "status":
            await error.write(json.dumps(status).encode())
        elif status.get("status") != "Success":
            await error.write(status.get("message", "").encode())
        await error.close()

    async def _stdin_to_runtime(self, writer: asyncio.StreamWriter) -> None:
        stream = self.streams.get("stdin")
        if stream is None:
            return
        while data := await stream.read():
            writer.write(iostream.frame(iostream.STDIN, data))
            await writer.drain()
        if not (stream.reset or writer.is_closing()):   # the client's end of input
            writer.write(iostream.frame(iostream.CLOSE, bytes([iostream.STDIN])))
            await writer.drain()

    async def _resizes_to_runtime(self, writer: asyncio.StreamWriter) -> None:
        stream = self.streams.get("resize")
        if stream is None:
            return
        decoder, pending = json.JSONDecoder(), ""
        while data := await stream.read():
            pending += data.decode("utf-8", "replace")
            while pending.strip():   # one JSON object after another, cut anywhere
                try:
                    size, end = decoder.raw_decode(pending.lstrip())
                except ValueError:
                    if len(pending) > MAX_RESIZE_MESSAGE:
                        return       # not JSON: no more resizes, as kubelet stops decoding
                    break            # incomplete: wait for more
                pending = pending.lstrip()[end:]
                if isinstance(size, dict) and "Width" in size and "Height" in size:
                    writer.write(iostream.frame(iostream.RESIZE, json.dumps(
                        {"Width": size["Width"], "Height": size["Height"]}).encode()))
                    await writer.drain()

    async def _hang_up_when_client_leaves(self, writer: asyncio.StreamWriter) -> None:
        assert self.session is not None
        await self.session.closed.wait()
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()
