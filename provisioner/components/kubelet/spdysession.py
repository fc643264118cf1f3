"""kubelet: the server side of one SPDY/3.1 session: streams the client opens, flow control, pings.

Built on spdy.py's frames. Bytes from the client go to `Session.feed` (from whatever transport
carries them: an upgraded HTTP connection or WebSocket binary messages); frames leave through the
`send` coroutine, one at a time and in order, from a single writer task. Each stream the client
opens (SYN_STREAM) is offered to `on_stream`, which accepts it (we answer SYN_REPLY) or refuses
it (RST_STREAM REFUSED_STREAM). The consumer reads a stream with `Stream.read` and writes with
`Stream.write`; window is given back to the client as the consumer reads, not as frames arrive.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Awaitable, Callable

from . import spdy
from .spdy import FrameType, RstStatus

log = logging.getLogger("kubelet.spdy")
HIGH_WATER = 4 * 1024 * 1024   # buffered client bytes before the transport should stop reading


class StreamClosed(ConnectionError):
    """The stream was reset, or the session ended."""


class Stream:
    def __init__(self, session: "Session", stream_id: int, headers: spdy.Headers):
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.send_window = spdy.Window(session.initial_send_window)
        self.receive_window = spdy.DEFAULT_WINDOW
        self.unacknowledged = 0       # bytes read by the consumer and not yet given back
        self.inbound: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reset = False
        self.gone = asyncio.Event()   # reset, or the session ended: wakes writers waiting for window

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    async def read(self) -> bytes:
        """The next bytes from the client; b"" once it finished the stream (or it was reset)."""
        if self.reset and self.inbound.empty():
            return b""
        data = await self.inbound.get()
        if data:
            self.session._consumed(self, len(data))
        else:
            self.inbound.put_nowait(b"")  # later reads see the end too
        return data

    async def write(self, data: bytes) -> None:
        session = self.session
        view = memoryview(data)
        while view:
            if self.reset or self.local_closed or session.closed.is_set():
                raise StreamClosed(f"stream {self.id} is closed")
            size = min(len(view), spdy.MAX_DATA_CHUNK)
            if session.peer_flow_control:
                if self.send_window.size <= 0 or session.send_window.size <= 0:
                    await self._window_opened()
                    continue
                size = min(size, self.send_window.size, session.send_window.size)
            self.send_window.consume(size)
            session.send_window.consume(size)
            await session.send_now(spdy.data_frame(self.id, bytes(view[:size])))
            view = view[size:]

    async def _window_opened(self) -> None:
        waits = [asyncio.ensure_future(w.opened()) for w in (self.send_window,
                                                              self.session.send_window)]
        waits += [asyncio.ensure_future(self.session.closed.wait()),
                  asyncio.ensure_future(self.gone.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def close(self) -> None:
        """Finish our half of the stream (an empty DATA frame with FIN)."""
        if not (self.local_closed or self.reset or self.session.closed.is_set()):
            self.local_closed = True
            await self.session.send_now(spdy.data_frame(self.id, b"", fin=True))
            self.session._maybe_forget(self)

    def abort(self, status: RstStatus = RstStatus.CANCEL) -> None:
        if not self.reset:
            self.session.queue(spdy.rst_stream(self.id, status))
            self._mark_reset()

    def _mark_reset(self) -> None:
        self.reset = True
        self.inbound.put_nowait(b"")
        self.gone.set()
        self.session.streams.pop(self.id, None)


class Session:
    def __init__(self, send: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[Stream], bool]):
        self._send = send
        self.on_stream = on_stream
        self.reader = spdy.FrameReader()
        self.inbound_codec, self.outbound_codec = spdy.HeaderCodec(), spdy.HeaderCodec()
        self.streams: dict[int, Stream] = {}
        self.last_stream_id = 0
        self.send_window = spdy.Window()
        self.receive_window = spdy.DEFAULT_WINDOW
        self.unacknowledged = 0
        self.initial_send_window = spdy.DEFAULT_WINDOW
        self.peer_flow_control = False
        self.going_away = False
        self.buffered = 0
        self.room = asyncio.Event()
        self.room.set()
        self.closed = asyncio.Event()
        self._outbox: asyncio.Queue[tuple[bytes, asyncio.Future | None]] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_frames())
        self._handlers = {
            FrameType.SYN_STREAM: self._on_syn_stream, FrameType.SYN_REPLY: self._on_headers,
            FrameType.HEADERS: self._on_headers, FrameType.RST_STREAM: self._on_rst_stream,
            FrameType.SETTINGS: self._on_settings, FrameType.PING: self._on_ping,
            FrameType.GOAWAY: self._on_goaway, FrameType.WINDOW_UPDATE: self._on_window_update}

    # -- output ---------------------------------------------------------------------------

    def queue(self, frame: bytes) -> None:
        if not self.closed.is_set():
            self._outbox.put_nowait((frame, None))

    async def send_now(self, frame: bytes) -> None:
        """Queue a frame and wait until the transport took it (the writer's backpressure)."""
        if self.closed.is_set():
            raise StreamClosed("the SPDY session has ended")
        done = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait((frame, done))
        await done

    async def _write_frames(self) -> None:
        while True:
            frame, done = await self._outbox.get()
            try:
                await self._send(frame)
            except Exception as error:  # noqa: BLE001 - the transport is gone: the session ends
                log.debug("SPDY session write failed: %s", error)
                if done is not None and not done.done():
                    done.set_exception(StreamClosed(str(error)))
                self.feed_eof()
                return
            if done is not None and not done.done():
                done.set_result(None)

    async def close(self) -> None:
        """Say GOAWAY and end the session."""
        if not self.closed.is_set():
            try:
                await asyncio.wait_for(self.send_now(spdy.goaway(
                    self.last_stream_id, spdy.GoAwayStatus.OK)), 5)
            except (StreamClosed, asyncio.TimeoutError):
                pass
        self.feed_eof()

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            for frame in self.reader.feed(data):
                if frame.type is None:
                    self._on_data(frame)
                else:
                    self._handlers[frame.type](frame)
        except (spdy.ProtocolError, struct.error) as error:
            log.info("SPDY protocol error from the client: %s", error)
            self.queue(spdy.goaway(self.last_stream_id, spdy.GoAwayStatus.PROTOCOL_ERROR))
            self.going_away = True

    def feed_eof(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for stream in list(self.streams.values()):
            stream._mark_reset()
        while not self._outbox.empty():
            _frame, done = self._outbox.get_nowait()
            if done is not None and not done.done():
                done.set_exception(StreamClosed("the SPDY session has ended"))
        if self._writer is not asyncio.current_task():
            self._writer.cancel()
        self.room.set()

    def _on_syn_stream(self, frame: spdy.Frame) -> None:
        stream_id = frame.word(0)
        headers = self.inbound_codec.decode(frame.payload[10:])  # always, to keep zlib in step
        if stream_id % 2 == 0 or stream_id <= self.last_stream_id:
            raise spdy.ProtocolError(f"stream id {stream_id} is not a new client stream id")
        self.last_stream_id = stream_id
        stream = Stream(self, stream_id, headers)
        if self.going_away:
            self.queue(spdy.rst_stream(stream_id, RstStatus.REFUSED_STREAM))
            return
        self.streams[stream_id] = stream
        stream.remote_closed = bool(frame.flags & spdy.FLAG_FIN)
        stream.local_closed = bool(frame.flags & spdy.FLAG_UNIDIRECTIONAL)
        if stream.remote_closed:
            stream.inbound.put_nowait(b"")
        if not self.on_stream(stream):
            stream.abort(RstStatus.REFUSED_STREAM)
            return
        self.queue(spdy.syn_reply(self.outbound_codec, stream_id, {}))

    def _on_headers(self, frame: spdy.Frame) -> None:
        self.inbound_codec.decode(frame.payload[4:])
        stream = self.streams.get(frame.word(0))
        if stream is not None and frame.flags & spdy.FLAG_FIN:
            self._remote_finished(stream)

    def _on_data(self, frame: spdy.Frame) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.remote_closed:
            status = RstStatus.INVALID_STREAM if stream is None else RstStatus.STREAM_ALREADY_CLOSED
            self.queue(spdy.rst_stream(frame.stream_id, status))
            return
        size = len(frame.payload)
        stream.receive_window -= size
        self.receive_window -= size
        if self.peer_flow_control and self.receive_window < 0:
            raise spdy.ProtocolError("the client overran the session window")
        if self.peer_flow_control and stream.receive_window < 0:
            stream.abort(RstStatus.FLOW_CONTROL_ERROR)
            return
        if size:
            stream.inbound.put_nowait(frame.payload)
            self.buffered += size
            if self.buffered >= HIGH_WATER:
                self.room.clear()
        if frame.flags & spdy.FLAG_FIN:
            self._remote_finished(stream)

    def _remote_finished(self, stream: Stream) -> None:
        stream.remote_closed = True
        stream.inbound.put_nowait(b"")
        self._maybe_forget(stream)

    def _maybe_forget(self, stream: Stream) -> None:
        if stream.remote_closed and stream.local_closed:
            self.streams.pop(stream.id, None)

    def _consumed(self, stream: Stream, size: int) -> None:
        """The consumer took `size` bytes: give window back once half of it is used up."""
        self.buffered -= size
        if self.buffered < HIGH_WATER:
            self.room.set()
        stream.unacknowledged += size
        self.unacknowledged += size
        if stream.unacknowledged >= spdy.DEFAULT_WINDOW // 2 and not stream.remote_closed \
                and not stream.reset:
            self.queue(spdy.window_update(stream.id, stream.unacknowledged))
            stream.receive_window += stream.unacknowledged
            stream.unacknowledged = 0
        if self.unacknowledged >= spdy.DEFAULT_WINDOW // 2:
            self.queue(spdy.window_update(0, self.unacknowledged))
            self.receive_window += self.unacknowledged
            self.unacknowledged = 0

    def _on_rst_stream(self, frame: spdy.Frame) -> None:
        stream = self.streams.get(frame.word(0))
        if stream is not None:
            stream._mark_reset()

    def _on_settings(self, frame: spdy.Frame) -> None:
        (count,) = struct.unpack_from(">I", frame.payload)
        for index in range(count):
            key, value = struct.unpack_from(">II", frame.payload, 4 + 8 * index)
            if key & 0xFFFFFF == spdy.SETTINGS_INITIAL_WINDOW_SIZE:
                self.peer_flow_control = True
                delta, self.initial_send_window = value - self.initial_send_window, value
                for stream in self.streams.values():
                    stream.send_window.grant(delta)

    def _on_ping(self, frame: spdy.Frame) -> None:
        (ping_id,) = struct.unpack_from(">I", frame.payload)
        if ping_id % 2 == 1:   # the client's ping (ours would be even): answer with the same id
            self.queue(spdy.ping(ping_id))

    def _on_goaway(self, frame: spdy.Frame) -> None:
        self.going_away = True

    def _on_window_update(self, frame: spdy.Frame) -> None:
        stream_id, delta = frame.word(0), frame.word(1)
        self.peer_flow_control = True
        if stream_id == 0:
            self.send_window.grant(delta)
        elif (stream := self.streams.get(stream_id)) is not None:
            try:
                stream.send_window.grant(delta)
            except spdy.ProtocolError:
                stream.abort(RstStatus.FLOW_CONTROL_ERROR)
