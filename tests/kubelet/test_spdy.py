"""Hermetic tests of the kubelet's SPDY/3.1 framing and session (no network: the "client" here
is this test writing frames into Session.feed and reading what the session sends)."""

from __future__ import annotations

import asyncio
import struct
import zlib

from provisioner.components.kubelet import spdy
from provisioner.components.kubelet.spdysession import Session

# the Adler-32 of SPDY/3's dictionary: the DICTID every zlib stream primed with it announces
SPDY3_DICTIONARY_ID = 0xE3C6A7C2


def test_the_dictionary_is_spdy3s():
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == SPDY3_DICTIONARY_ID
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_header_blocks_round_trip_through_one_zlib_stream_per_direction():
    sender, receiver = spdy.HeaderCodec(), spdy.HeaderCodec()
    first = sender.encode({"streamType": "error", "port": "8080", "requestID": "0"})
    # a zlib stream with a preset dictionary: FDICT set, then the dictionary's id
    assert first[1] & 0x20 and struct.unpack(">I", first[2:6])[0] == SPDY3_DICTIONARY_ID
    assert first.endswith(b"\x00\x00\xff\xff")  # sync-flushed: the block ends on a byte boundary
    assert receiver.decode(first) == {"streamtype": ["error"], "port": ["8080"],
                                      "requestid": ["0"]}
    second = sender.encode({"streamType": "data", "port": "8080", "requestID": "0",
                            "x-many": ["a", "b"]})
    assert receiver.decode(second) == {"streamtype": ["data"], "port": ["8080"],
                                       "requestid": ["0"], "x-many": ["a", "b"]}
    # a fresh decoder cannot read the second block alone: the state spans the session
    try:
        spdy.HeaderCodec().decode(second)
    except spdy.ProtocolError:
        pass
    else:
        raise AssertionError("a mid-session block decoded without the session's history")


def test_frames_are_cut_from_bytes_however_they_arrive():
    codec = spdy.HeaderCodec()
    wire = (spdy.syn_stream(codec, 1, {"a": "b"}) + spdy.data_frame(1, b"hello", fin=True)
            + spdy.ping(7) + spdy.window_update(0, 1000))
    reader, frames = spdy.FrameReader(), []
    for index in range(len(wire)):      # one byte at a time, as a WebSocket might split them
        frames += reader.feed(wire[index:index + 1])
    assert [f.type for f in frames] == [spdy.FrameType.SYN_STREAM, None, spdy.FrameType.PING,
                                        spdy.FrameType.WINDOW_UPDATE]
    assert (frames[1].stream_id, frames[1].payload, frames[1].flags) == (1, b"hello",
                                                                         spdy.FLAG_FIN)
    assert frames[3].word(0) == 0 and frames[3].word(1) == 1000
    assert wire[:4] == b"\x80\x03\x00\x01"   # control bit, version 3, type SYN_STREAM


class Client:
    """The test's side of a session: frames it sends, frames it got back."""

    def __init__(self):
        self.codec, self.reply_codec = spdy.HeaderCodec(), spdy.HeaderCodec()
        self.reader = spdy.FrameReader()
        self.received: list[spdy.Frame] = []
        self.streams = []

    async def send(self, data: bytes) -> None:
        self.received += self.reader.feed(data)

    def accept(self, stream) -> bool:
        self.streams.append(stream)
        return stream.header("port") != "0"

    def of_type(self, kind):
        return [f for f in self.received if f.type == kind]


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


def test_streams_replies_pings_and_refusals():
    async def scenario():
        client = Client()
        session = Session(client.send, client.accept)
        session.feed(spdy.syn_stream(client.codec, 1, {"port": "80", "streamType": "data"}))
        session.feed(spdy.syn_stream(client.codec, 3, {"port": "0"}))
        session.feed(spdy.ping(5))
        await settle()
        [reply] = client.of_type(spdy.FrameType.SYN_REPLY)
        assert reply.word(0) == 1 and client.reply_codec.decode(reply.payload[4:]) == {}
        [reset] = client.of_type(spdy.FrameType.RST_STREAM)
        assert (reset.word(0), reset.word(1)) == (3, spdy.RstStatus.REFUSED_STREAM)
        [pong] = client.of_type(spdy.FrameType.PING)
        assert pong.word(0) == 5
        stream = client.streams[0]
        session.feed(spdy.data_frame(1, b"abc", fin=True))
        assert await stream.read() == b"abc" and await stream.read() == b""
        await stream.write(b"xyz")
        await stream.close()
        data = [f for f in client.received if f.type is None]
        assert [(f.stream_id, f.payload, f.flags) for f in data] == [
            (1, b"xyz", 0), (1, b"", spdy.FLAG_FIN)]
        await session.close()
        assert client.of_type(spdy.FrameType.GOAWAY)[0].word(0) == 3
    asyncio.run(scenario())


def test_window_is_given_back_as_the_consumer_reads():
    async def scenario():
        client = Client()
        session = Session(client.send, client.accept)
        session.feed(spdy.syn_stream(client.codec, 1, {"port": "80"}))
        stream = client.streams[0]
        for _ in range(3):
            session.feed(spdy.data_frame(1, b"x" * 16384))
        await settle()
        assert client.of_type(spdy.FrameType.WINDOW_UPDATE) == []   # not yet read: no window back
        assert stream.receive_window == spdy.DEFAULT_WINDOW - 3 * 16384
        for _ in range(2):
            await stream.read()
        await settle()
        updates = {f.word(0): f.word(1) for f in client.of_type(spdy.FrameType.WINDOW_UPDATE)}
        assert updates == {1: 32768, 0: 32768}                     # the stream's and the session's
        assert stream.receive_window == spdy.DEFAULT_WINDOW - 16384
    asyncio.run(scenario())


def test_sending_waits_for_window_once_the_peer_does_flow_control():
    async def scenario():
        client = Client()
        session = Session(client.send, client.accept)
        session.feed(spdy.settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1000}))
        session.feed(spdy.syn_stream(client.codec, 1, {"port": "80"}))
        stream = client.streams[0]
        writing = asyncio.ensure_future(stream.write(b"y" * 2500))
        await settle()
        sent = lambda: sum(len(f.payload) for f in client.received if f.type is None)  # noqa: E731
        assert sent() == 1000 and not writing.done()
        session.feed(spdy.window_update(1, 1000))
        await settle()
        assert sent() == 2000 and not writing.done()
        session.feed(spdy.window_update(1, 5000))
        await asyncio.wait_for(writing, 5)
        assert sent() == 2500 and stream.send_window.size == 4500
        assert session.send_window.size == spdy.DEFAULT_WINDOW - 2500
    asyncio.run(scenario())


def test_a_peer_without_flow_control_is_not_stalled():
    async def scenario():                  # kubectl (spdystream) never sends WINDOW_UPDATE
        client = Client()
        session = Session(client.send, client.accept)
        session.feed(spdy.syn_stream(client.codec, 1, {"port": "80"}))
        await asyncio.wait_for(client.streams[0].write(b"z" * (3 * spdy.DEFAULT_WINDOW)), 5)
        assert sum(len(f.payload) for f in client.received if f.type is None) == \
            3 * spdy.DEFAULT_WINDOW
    asyncio.run(scenario())
