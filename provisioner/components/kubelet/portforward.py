"""kubelet: /portForward over SPDY/3.1, the protocol kubectl port-forward speaks (portforward.k8s.io).

Two ways in, one protocol: a plain upgrade (POST, `Upgrade: SPDY/3.1`) whose connection then carries
SPDY frames, or a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` whose binary messages
carry the same frame bytes (kubectl's default since 1.31). server.py sends both here; its own
v4.channel.k8s.io path (the Python client's) stays there.

In the session, each forwarded connection is a pair of client-opened streams sharing the headers
`port` and `requestID`: `streamType: error` and `streamType: data`. Once both arrived we dial the
pod's port and copy bytes between it and the data stream; a failure is written as text on the
error stream. Both streams are finished when the pod side ends. A pair not complete within
STREAM_CREATION_TIMEOUT is reported on its error stream, as kubelet does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from .spdysession import Session, Stream, StreamClosed

log = logging.getLogger("kubelet.portforward")
PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
SPDY_UPGRADE = "SPDY/3.1"
STREAM_TYPES = ("error", "data")
STREAM_CREATION_TIMEOUT = 30.0
DIAL_TIMEOUT = 10.0
COPY_CHUNK = 32 * 1024


def offered_protocols(request: web.Request, header: str) -> list[str]:
    return [p.strip() for value in request.headers.getall(header, []) for p in value.split(",")
            if p.strip()]


def speaks_spdy(request: web.Request) -> bool:
    """Whether this /portForward request is kubectl's (SPDY, plain or tunnelled in WebSocket)."""
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade == SPDY_UPGRADE.lower():
        return True
    return upgrade == "websocket" and \
        TUNNEL_PROTOCOL in offered_protocols(request, "Sec-WebSocket-Protocol")


async def serve(request: web.Request, address: str, pod: str, uid: str) -> web.StreamResponse:
    """Answer the upgrade and forward until the client goes away."""
    wanted = offered_protocols(request, "X-Stream-Protocol-Version")
    if wanted and PROTOCOL not in wanted:
        raise web.HTTPForbidden(text=f"unable to upgrade: unable to negotiate protocol: client "
                                     f"supports {wanted}, server supports [{PROTOCOL}]")
    forwarder = Forwarder(address, pod, uid)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _over_websocket(request, forwarder)
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        raise web.HTTPBadRequest(text="unable to upgrade: missing upgrade headers in request "
                                      "(Connection: Upgrade, Upgrade: SPDY/3.1)")
    return await _over_upgraded_connection(request, forwarder)


async def _over_websocket(request: web.Request, forwarder: "Forwarder") -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), autoping=True)
    await ws.prepare(request)
    session = Session(ws.send_bytes, forwarder.on_stream)
    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                session.feed(message.data)
                await session.room.wait()   # the pods are slower than the client: stop reading
            elif message.type == WSMsgType.TEXT:
                log.debug("ignoring a text message on a SPDY tunnel")
    finally:
        session.feed_eof()
        forwarder.stop()
        await ws.close()
    return ws


class _RawConnection:
    """An upgraded HTTP connection: aiohttp hands us its later bytes as to a payload parser."""

    def __init__(self, request: web.Request):
        self.request = request
        self.session: Session | None = None
        self.ended = asyncio.Event()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        assert self.session is not None
        self.session.feed(data)
        transport = self.request.transport
        if not self.session.room.is_set() and transport is not None:
            transport.pause_reading()
            asyncio.get_running_loop().create_task(self._resume_when_room())
        return False, b""

    def feed_eof(self) -> None:
        self.ended.set()

    async def _resume_when_room(self) -> None:
        assert self.session is not None
        await self.session.room.wait()
        if self.request.transport is not None:
            self.request.transport.resume_reading()

    async def send(self, frame: bytes) -> None:
        if self.request.transport is None or self.request.transport.is_closing():
            raise ConnectionResetError("the client connection is closed")
        await self.request.writer.write(frame)


class _AlreadySent(web.StreamResponse):
    """The response of a hijacked connection: its 101 head went out by hand."""

    async def prepare(self, request):  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


async def _over_upgraded_connection(request: web.Request, forwarder: "Forwarder"):
    raw = _RawConnection(request)
    raw.session = Session(raw.send, forwarder.on_stream)
    head = ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            f"Upgrade: {SPDY_UPGRADE}\r\nX-Stream-Protocol-Version: {PROTOCOL}\r\n\r\n")
    await request.writer.write(head.encode("latin-1"))
    request.protocol.set_parser(raw)  # type: ignore[arg-type]  # every later client byte
    try:
        await asyncio.wait([asyncio.ensure_future(raw.ended.wait()),
                            asyncio.ensure_future(raw.session.closed.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        raw.session.feed_eof()
        forwarder.stop()
        request.protocol.force_close()
    return _AlreadySent(status=101)


@dataclass
class _Pair:
    request_id: str
    error: Stream | None = None
    data: Stream | None = None
    timer: asyncio.TimerHandle | None = None


class Forwarder:
    """The portforward.k8s.io side of one session: pairs streams and copies their bytes."""

    def __init__(self, address: str, pod: str, uid: str):
        self.address, self.pod, self.uid = address, pod, uid
        self.pairs: dict[str, _Pair] = {}
        self.tasks: set[asyncio.Task] = set()

    def on_stream(self, stream: Stream) -> bool:
        port, kind = stream.header("port"), stream.header("streamType")
        if not port.isdigit() or not 0 < int(port) < 65536 or kind not in STREAM_TYPES:
            log.info("refusing port-forward stream %d: port %r, streamType %r", stream.id, port,
                     kind)
            return False
        request_id = stream.header("requestID") or self._legacy_request_id(stream, kind)
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id)
            pair.timer = asyncio.get_running_loop().call_later(
                STREAM_CREATION_TIMEOUT, self._expire, pair)
        if getattr(pair, kind) is not None:
            self._spawn(self._report(pair, f"error processing stream for request {request_id}: "
                                           f"{kind} stream already assigned", close=False))
            return True
        setattr(pair, kind, stream)
        if pair.error is not None and pair.data is not None:
            pair.timer.cancel()
            del self.pairs[request_id]
            self._spawn(self._forward(pair))
        return True

    @staticmethod
    def _legacy_request_id(stream: Stream, kind: str) -> str:
        """Old clients send no requestID: their error and data streams have consecutive odd ids."""
        return str(stream.id if kind == "error" else stream.id - 2)

    def _expire(self, pair: _Pair) -> None:
        self.pairs.pop(pair.request_id, None)
        self._spawn(self._report(pair, f"timed out waiting for streams of request "
                                       f"{pair.request_id}", close=True))

    def _spawn(self, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stop(self) -> None:
        for pair in self.pairs.values():
            if pair.timer is not None:
                pair.timer.cancel()
        for task in list(self.tasks):
            task.cancel()

    @staticmethod
    async def _report(pair: _Pair, message: str, close: bool) -> None:
        try:
            if pair.error is not None:
                await pair.error.write(message.encode())
                if close:
                    await pair.error.close()
            if close and pair.data is not None:
                await pair.data.close()
        except StreamClosed:
            pass

    async def _forward(self, pair: _Pair) -> None:
        assert pair.data is not None and pair.error is not None
        port = int(pair.data.header("port"))
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.address, port), DIAL_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as error:
            errno = getattr(error, "errno", None)   # asyncio's strerror names the address only
            reason = os.strerror(errno) if errno else str(error) or "i/o timeout"
            reason = f"dial tcp {self.address}:{port}: connect: {reason.lower()}"
            await self._report(pair, f"error forwarding port {port} to pod {self.pod}, uid "
                                     f"{self.uid}: {reason}", close=True)
            return
        upload = asyncio.get_running_loop().create_task(self._client_to_pod(pair.data, writer))
        try:
            while chunk := await reader.read(COPY_CHUNK):
                await pair.data.write(chunk)
        except (StreamClosed, ConnectionError) as error:
            log.debug("port-forward to %s:%d ended: %s", self.address, port, error)
        finally:
            upload.cancel()
            writer.close()
            for stream in (pair.data, pair.error):
                try:
                    await stream.close()
                except StreamClosed:
                    pass

    @staticmethod
    async def _client_to_pod(stream: Stream, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await stream.read():
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()   # the client finished sending: half-close, keep reading
        except (ConnectionError, OSError) as error:
            log.debug("port-forward upload ended: %s", error)
