"""Hermetic tests of the kubelet's remotecommand over SPDY (spdyexec.RemoteCommand) and its
negotiation: the command starts only once every announced stream is open, stdin and its end,
output and the v4 Status (or before v4 a failure's message) on the error stream, resizes cut
anywhere, unknown streams refused. The "runtime" is a fake daemon on a Unix socket speaking its
upgraded exec (runtime/iostream.py frames); the client is this test writing SPDY frames."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from provisioner.components.kubelet import spdy, spdyexec
from provisioner.components.kubelet.spdysession import Session
from provisioner.components.runtime import iostream

from .test_portforward_protocol import finished, payload, until
from .test_spdy import Client, settle


class FakeRuntime:
    """The runtime daemon's upgraded exec: echoes stdin on stdout, says "bye" on stderr, and
    at the end of stdin exits with `code`. Records the request and the frames it got."""

    def __init__(self, code: int):
        self.code = code
        self.request: dict | None = None
        self.frames: list[tuple[int, bytes]] = []

    async def start(self, path: str) -> None:
        self.server = await asyncio.start_unix_server(self.serve, path)

    async def serve(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        self.request = {"line": head.split("\r\n")[0],
                        **json.loads(await reader.readexactly(length))}
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: tcp\r\n\r\n")
        decoder = iostream.FrameDecoder()
        while data := await reader.read(65536):
            for channel, body in decoder.feed(data):
                self.frames.append((channel, body))
                if channel == iostream.STDIN:
                    writer.write(iostream.frame(iostream.STDOUT, body))
                elif channel == iostream.CLOSE:
                    writer.write(iostream.frame(iostream.STDERR, b"bye") + iostream.frame(
                        iostream.STATUS, json.dumps({"exit_code": self.code}).encode()))
                    await writer.drain()
                    writer.close()
                    return


def exchange(tmp_path, protocol: str, options: spdyexec.Options, code: int, streams: dict,
             client_frames):
    """Open `streams` (id -> streamType), then send `client_frames(header codec)` (a callable
    among them: wait until it holds for the runtime); the client and the runtime once the error
    stream finished."""
    async def scenario():
        runtime = FakeRuntime(code)
        socket_path = str(tmp_path / "runtime.sock")
        await runtime.start(socket_path)
        client = Client()
        command = spdyexec.RemoteCommand(protocol, options)
        command.session = Session(client.send, command.on_stream)
        run = asyncio.ensure_future(command.run(socket_path, {"container": "c1", "cmd": ["cat"],
                                                              "stdin": options.stdin,
                                                              "tty": options.tty}))
        *first, last = streams.items()
        for stream_id, kind in first:
            command.session.feed(spdy.syn_stream(client.codec, stream_id, {"streamType": kind}))
        await settle()
        assert not command.complete.is_set() and runtime.request is None, \
            "started before every announced stream was open"
        command.session.feed(spdy.syn_stream(client.codec, last[0], {"streamType": last[1]}))
        for frame in client_frames(client.codec):
            if callable(frame):
                await until(lambda: frame(runtime))
            else:
                command.session.feed(frame)
        await asyncio.wait_for(run, 10)
        await until(lambda: finished(client, 1))
        runtime.server.close()
        return client, runtime
    return asyncio.run(scenario())


def test_v4_stdin_output_and_the_exit_code_status(tmp_path):
    options = spdyexec.Options(stdin=True, stdout=True, stderr=True, tty=False)
    client, runtime = exchange(tmp_path, "v4.channel.k8s.io", options, 3,
                               {1: "error", 3: "stdin", 5: "stdout", 7: "stderr"},
                               lambda codec: [
                                   spdy.syn_stream(codec, 9, {"streamType": "bogus"}),
                                   spdy.data_frame(3, b"hello "),
                                   spdy.data_frame(3, b"spdy", fin=True)])
    assert runtime.request["line"].startswith("POST /v1/containers/c1/exec ")
    assert (runtime.request["cmd"], runtime.request["stdin"]) == (["cat"], True)
    assert runtime.frames[-1] == (iostream.CLOSE, bytes([iostream.STDIN]))
    assert payload(client, 5) == b"hello spdy" and finished(client, 5)
    assert payload(client, 7) == b"bye" and finished(client, 7)
    status = json.loads(payload(client, 1))
    assert (status["status"], status["reason"]) == ("Failure", "NonZeroExitCode")
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert len(client.of_type(spdy.FrameType.SYN_REPLY)) == 4
    [refused] = client.of_type(spdy.FrameType.RST_STREAM)
    assert (refused.word(0), refused.word(1)) == (9, spdy.RstStatus.REFUSED_STREAM)


def resized(runtime: FakeRuntime) -> list[dict]:
    return [json.loads(body) for channel, body in runtime.frames if channel == iostream.RESIZE]


def test_v3_resizes_cut_anywhere_and_a_failure_as_its_message(tmp_path):
    options = spdyexec.Options(stdin=True, stdout=True, stderr=False, tty=True)
    resizes = b'{"Width":80,"Height":24}\n{"Width":100,"Height":30}\n'
    client, runtime = exchange(tmp_path, "v3.channel.k8s.io", options, 2,
                               {1: "error", 3: "stdin", 5: "stdout", 7: "resize"},
                               lambda codec: [spdy.data_frame(7, resizes[:13]),
                                              spdy.data_frame(7, resizes[13:]),
                                              lambda runtime: len(resized(runtime)) == 2,
                                              spdy.data_frame(3, b"x", fin=True)])
    assert runtime.request["tty"] is True
    assert resized(runtime) == [{"Width": 80, "Height": 24}, {"Width": 100, "Height": 30}]
    assert payload(client, 1) == b"command terminated with non-zero exit code: exit status 2"


def test_v2_success_leaves_the_error_stream_empty(tmp_path):
    options = spdyexec.Options(stdin=True, stdout=True, stderr=False, tty=False)
    client, _ = exchange(tmp_path, "v2.channel.k8s.io", options, 0,
                         {1: "error", 3: "stdin", 5: "stdout"},
                         lambda codec: [spdy.data_frame(3, b"", fin=True)])
    assert payload(client, 1) == b"" and finished(client, 5)


def request(*versions: str, **query: str) -> web.Request:
    headers = CIMultiDict([("X-Stream-Protocol-Version", v) for v in versions])
    path = "/exec/ns/pod/c?" + "&".join(f"{k}={v}" for k, v in query.items())
    return make_mocked_request("POST", path, headers=headers)


def test_the_clients_most_preferred_version_we_speak_is_chosen():
    assert spdyexec.negotiate(request("v9.channel.k8s.io", "v4.channel.k8s.io",
                                      "v3.channel.k8s.io")) == "v4.channel.k8s.io"
    assert spdyexec.negotiate(request()) == "channel.k8s.io"    # a client from before versions
    with pytest.raises(web.HTTPForbidden) as refused:
        spdyexec.negotiate(request("v9.channel.k8s.io"))
    assert "unable to negotiate protocol" in refused.value.text


def test_options_drop_stderr_with_a_tty_and_need_one_stream():
    options = spdyexec.Options.from_query(request(stdin="1", stderr="true", tty="1").query)
    assert (options.stdin, options.stderr, options.tty) == (True, False, True)
    with pytest.raises(web.HTTPBadRequest):
        spdyexec.Options.from_query(request(tty="1").query)
