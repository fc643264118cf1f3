"""Hermetic tests of portforward.k8s.io on a SPDY session (the kubelet's portforward.Forwarder):
stream pairs with and without requestID, a refused port and an incomplete pair reported on the
error stream, invalid streams refused. The "pod" is a TCP server on loopback; the client is this
test writing frames."""

from __future__ import annotations

import asyncio
import socket

from provisioner.components.kubelet import portforward, spdy
from provisioner.components.kubelet.spdysession import Session

from .test_spdy import Client


async def until(check, timeout: float = 10):
    async def poll():
        while not check():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def payload(client: Client, stream_id: int) -> bytes:
    return b"".join(f.payload for f in client.received if f.type is None and
                    f.stream_id == stream_id)


def finished(client: Client, stream_id: int) -> bool:
    return any(f.type is None and f.stream_id == stream_id and f.flags & spdy.FLAG_FIN
               for f in client.received)


async def shouting_pod():
    """A pod port that answers what it read, upper-cased, once the client half-closed."""
    async def serve(reader, writer):
        writer.write((await reader.read()).upper())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def session_for(client: Client, forwarder: portforward.Forwarder) -> Session:
    return Session(client.send, forwarder.on_stream)


def test_a_pair_without_request_id_is_forwarded_and_finished():
    async def scenario():
        server, port = await shouting_pod()
        client = Client()
        session = session_for(client, portforward.Forwarder("127.0.0.1", "web", "u1"))
        # an old client: no requestID, error stream then data stream with the next odd id
        session.feed(spdy.syn_stream(client.codec, 1, {"streamType": "error", "port": str(port)}))
        session.feed(spdy.syn_stream(client.codec, 3, {"streamType": "data", "port": str(port)}))
        session.feed(spdy.data_frame(3, b"hello pod", fin=True))
        await until(lambda: finished(client, 3) and finished(client, 1))
        assert payload(client, 3) == b"HELLO POD"
        assert payload(client, 1) == b""                  # no error
        assert len(client.of_type(spdy.FrameType.SYN_REPLY)) == 2
        server.close()
    asyncio.run(scenario())


def test_a_refused_port_is_reported_on_the_error_stream():
    async def scenario():
        with socket.socket() as probe:                   # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = Client()
        session = session_for(client, portforward.Forwarder("127.0.0.1", "web", "u1"))
        for stream_id, kind in ((1, "error"), (3, "data")):
            session.feed(spdy.syn_stream(client.codec, stream_id, {
                "streamType": kind, "port": str(port), "requestID": "0"}))
        await until(lambda: finished(client, 1) and finished(client, 3))
        assert payload(client, 1).decode() == (
            f"error forwarding port {port} to pod web, uid u1: dial tcp 127.0.0.1:{port}: "
            f"connect: connection refused")
    asyncio.run(scenario())


def test_an_incomplete_pair_times_out(monkeypatch):
    monkeypatch.setattr(portforward, "STREAM_CREATION_TIMEOUT", 0.2)

    async def scenario():
        client = Client()
        session = session_for(client, portforward.Forwarder("127.0.0.1", "web", "u1"))
        session.feed(spdy.syn_stream(client.codec, 1, {"streamType": "error", "port": "80",
                                                       "requestID": "7"}))
        await until(lambda: finished(client, 1))
        assert payload(client, 1) == b"timed out waiting for streams of request 7"
    asyncio.run(scenario())


def test_streams_without_a_valid_port_or_type_are_refused():
    async def scenario():
        client = Client()
        session = session_for(client, portforward.Forwarder("127.0.0.1", "web", "u1"))
        for stream_id, headers in ((1, {"streamType": "data"}),
                                   (3, {"streamType": "data", "port": "70000"}),
                                   (5, {"streamType": "stdin", "port": "80"})):
            session.feed(spdy.syn_stream(client.codec, stream_id, headers))
        await until(lambda: len(client.of_type(spdy.FrameType.RST_STREAM)) == 3)
        assert {(f.word(0), f.word(1)) for f in client.of_type(spdy.FrameType.RST_STREAM)} == {
            (i, spdy.RstStatus.REFUSED_STREAM) for i in (1, 3, 5)}
        assert client.of_type(spdy.FrameType.SYN_REPLY) == []
    asyncio.run(scenario())
