"""The kubelet proxy (pods/log, exec, attach, portforward, nodes/proxy) against a kubelet-like
HTTPS server on loopback, through real kubectl and plain WebSocket clients.

The fake kubelet is a small aiohttp server on its own thread and port (a network boundary): it
demands the API server's kubelet client certificate, echoes what it was asked (path, query, the
client certificate's CN) and speaks v5.channel.k8s.io for exec and attach. The API server under
test is its own DevCluster, started with --kubelet-client-certificate/-key and
--kubelet-certificate-authority.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import threading
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from provisioner.pki import certs
from tests.conftest import dev_cluster

from .conftest import Kubectl

CHANNEL_STDIN, CHANNEL_STDOUT, CHANNEL_ERROR, CHANNEL_CLOSE = 0, 1, 3, 255


def _peer_cn(request: web.Request) -> str:
    cert = request.transport.get_extra_info("peercert") if request.transport else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


class FakeKubelet:
    """Serves the kubelet's paths the API server forwards to; records nothing but echoes all."""

    def __init__(self, pki: Path, serving: str):
        self.pki, self.serving = pki, serving
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(30), "fake kubelet did not start"

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki / f"{self.serving}.crt", self.pki / f"{self.serving}.key")
        ctx.load_verify_locations(self.pki / "kubelet-client-ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED  # as a kubelet with --client-ca-file and no anonymous auth
        return ctx

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_route("*", "/exec/{ns}/{pod}/{container}", self.exec)
        app.router.add_route("*", "/attach/{ns}/{pod}/{container}", self.exec)
        app.router.add_route("*", "/portForward/{ns}/{pod}", self.port_forward)
        app.router.add_route("*", "/{tail:.*}", self.anything)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl())
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - port 0 was asked for
        self.runner = runner
        started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        lines = [f"log of {m['ns']}/{m['pod']}/{m['container']}",
                 f"query {json.dumps(sorted(request.query.items()))}", f"client {_peer_cn(request)}"]
        return web.Response(text="\n".join(lines) + "\n")

    async def anything(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"method": request.method, "path": request.path,
                                  "query": request.query_string, "body": body.decode(),
                                  "client": _peer_cn(request)})

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """v5.channel.k8s.io (or v4): write the command and client CN, echo stdin until closed."""
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        words = request.query.getall("command", [])
        header = f"{request.path.split('/')[1]} {' '.join(words)} as {_peer_cn(request)}\n"
        await ws.send_bytes(bytes([CHANNEL_STDOUT]) + header.encode())
        if request.query.get("stdin") in ("1", "true"):
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    break
                if msg.data[0] == CHANNEL_STDIN:
                    await ws.send_bytes(bytes([CHANNEL_STDOUT]) + msg.data[1:].upper())
                elif msg.data[0] == CHANNEL_CLOSE:
                    break
        await ws.send_bytes(bytes([CHANNEL_ERROR]) + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()
        return ws

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """Echoes binary messages back, so a client can see both directions pass the splice."""
        ws = web.WebSocketResponse(protocols=("SPDY/3.1+portforward.k8s.io", "portforward.k8s.io"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            await ws.send_bytes(msg.data[::-1])
        await ws.close()
        return ws


class SpdyKubelet:
    """A kubelet that answers an exec upgrade with SPDY/3.1, as kubelets did before WebSocket: it
    switches protocols, says which path and stream protocol it was asked for, then echoes every
    byte. Plain asyncio streams: nothing in it parses what follows the 101."""

    def __init__(self, ssl_context: ssl.SSLContext):
        self.loop = asyncio.new_event_loop()
        server = self.loop.run_until_complete(asyncio.start_server(self.serve, "127.0.0.1", 0, ssl=ssl_context))
        self.port = server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: " + headers.get("x-stream-protocol-version", "").encode() +
                     b"\r\n\r\n")
        writer.write(f"{lines[0].split()[1]} {headers.get('upgrade')}\n".encode())
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """(DevCluster with kubelet flags, kubectl, trusted fake kubelet, untrusted fake kubelet)."""
    root = tmp_path_factory.mktemp("proxy-kubelet")
    pki = root / "kubelet-pki"
    serving_ca, client_ca, rogue_ca = (certs.new_ca(n) for n in ("kubelet-ca", "kubelet-client-ca", "rogue"))
    serving_ca.save(pki, "kubelet-ca")
    client_ca.save(pki, "kubelet-client-ca")
    certs.issue(serving_ca, "node-a", ip_addresses=("127.0.0.1",), server=True).save(pki, "kubelet")
    certs.issue(rogue_ca, "node-b", ip_addresses=("127.0.0.1",), server=True).save(pki, "rogue")
    certs.issue(client_ca, "kube-apiserver-kubelet-client", organizations=("kubeadm:cluster-admins",),
                client=True).save(pki, "apiserver-kubelet-client")
    cluster = dev_cluster(root / "cluster", extra_args=[
        "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
        "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
        "--kubelet-certificate-authority", str(pki / "kubelet-ca.crt")])
    cluster.start()
    kubelet, rogue = FakeKubelet(pki, "kubelet"), FakeKubelet(pki, "rogue")
    spdy = SpdyKubelet(kubelet._ssl())
    kubectl = Kubectl(cluster, tmp_path_factory.mktemp("proxy-kubectl-home"))
    for node, fake in (("node-a", kubelet), ("node-b", rogue), ("node-c", spdy)):
        kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                        "metadata": {"name": node}}))
        kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
            "addresses": [{"type": "Hostname", "address": node}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": fake.port}}}}))
    kubectl("create", "namespace", "proxied")
    for pod, node in (("web", "node-a"), ("elsewhere", "node-b"), ("old", "node-c")):
        kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "proxied"},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"},
                                                       {"name": "sidecar", "image": "busybox"}]}}))
    yield cluster, kubectl, kubelet, rogue
    kubelet.stop()
    rogue.stop()
    spdy.stop()
    cluster.stop()


def test_kubectl_logs_reaches_the_pods_kubelet_with_the_client_certificate(proxied):
    _, kubectl, _, _ = proxied
    out = kubectl("logs", "-n", "proxied", "web", "-c", "sidecar", "--tail=2", "--timestamps").stdout
    lines = out.splitlines()
    assert lines[0] == "log of proxied/web/sidecar"
    assert json.loads(lines[1].removeprefix("query ")) == [["tailLines", "2"], ["timestamps", "true"]]
    assert lines[2] == "client kube-apiserver-kubelet-client"


def test_logs_of_a_multi_container_pod_without_a_container_is_refused_as_kube_apiserver_does(proxied):
    cluster, _, _, _ = proxied
    from .conftest import Raw

    status, _, body = Raw(cluster)("GET", "/api/v1/namespaces/proxied/pods/web/log")
    assert status == 400
    assert json.loads(body)["message"] == ("a container name must be specified for pod web, "
                                           "choose one of: [app sidecar]")
    status, _, body = Raw(cluster)("GET", "/api/v1/namespaces/proxied/pods/web/log?container=nope")
    assert (status, json.loads(body)["message"]) == (400, "container nope is not valid for pod web")


def test_kubectl_exec_streams_stdin_and_stdout_over_websocket(proxied):
    _, kubectl, _, _ = proxied
    out = kubectl("exec", "-i", "-n", "proxied", "web", "-c", "app", "--", "cat", "-n",
                  input="hello through the api server\n").stdout
    assert out.splitlines() == ["exec cat -n as kube-apiserver-kubelet-client",
                                "HELLO THROUGH THE API SERVER"]


def test_attach_and_port_forward_upgrades_are_spliced_both_ways(proxied):
    cluster, _, _, _ = proxied

    async def go() -> tuple[list[bytes], bytes, str]:
        ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
        ctx.load_cert_chain(cluster.pki / "admin.crt", cluster.pki / "admin.key")
        async with aiohttp.ClientSession() as session:
            base = f"wss://127.0.0.1:{cluster.api_port}/api/v1/namespaces/proxied/pods/web"
            async with session.ws_connect(f"{base}/attach?container=app&stdin=true&stdout=true",
                                          protocols=("v5.channel.k8s.io",), ssl=ctx) as ws:
                await ws.send_bytes(bytes([CHANNEL_STDIN]) + b"typed")
                await ws.send_bytes(bytes([CHANNEL_CLOSE, CHANNEL_STDIN]))
                got = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
                protocol = ws.protocol
            async with session.ws_connect(f"{base}/portforward?ports=80",
                                          protocols=("SPDY/3.1+portforward.k8s.io",), ssl=ctx) as pf:
                await pf.send_bytes(os.urandom(1) + b"abc" * 50000)
                echoed = (await pf.receive(timeout=30)).data
        return got, echoed, protocol or ""

    got, echoed, protocol = asyncio.run(go())
    assert protocol == "v5.channel.k8s.io"
    assert got[0] == bytes([CHANNEL_STDOUT]) + b"attach  as kube-apiserver-kubelet-client\n"
    assert got[1] == bytes([CHANNEL_STDOUT]) + b"TYPED"
    assert json.loads(got[2][1:])["status"] == "Success"
    assert echoed[:150000] == (b"abc" * 50000)[::-1]


def test_node_proxy_passes_method_path_and_query(proxied):
    _, kubectl, _, _ = proxied
    out = json.loads(kubectl("get", "--raw", "/api/v1/nodes/node-a/proxy/stats/summary?only_cpu=true").stdout)
    assert out == {"method": "GET", "path": "/stats/summary", "query": "only_cpu=true", "body": "",
                   "client": "kube-apiserver-kubelet-client"}


def test_a_kubelet_whose_serving_certificate_the_ca_did_not_sign_is_not_trusted(proxied):
    _, kubectl, _, _ = proxied
    proc = kubectl("logs", "-n", "proxied", "elsewhere", "-c", "app", check=False)
    assert proc.returncode != 0
    assert "certificate verify failed" in proc.stderr


def test_websocket_exec_needs_create_on_pods_exec(proxied, tmp_path):
    cluster, kubectl, _, _ = proxied
    kubectl("create", "role", "exec-get-only", "-n", "proxied", "--verb=get", "--resource=pods,pods/exec")
    kubectl("create", "rolebinding", "exec-get-only", "-n", "proxied", "--role=exec-get-only", "--user=carol")
    carol = Kubectl(cluster, tmp_path, cluster.user_kubeconfig("carol"))
    proc = carol("exec", "-n", "proxied", "web", "-c", "app", "--", "true", check=False)
    assert proc.returncode != 0
    assert 'User "carol" cannot create resource "pods/exec"' in proc.stderr
    kubectl("create", "role", "exec-create", "-n", "proxied", "--verb=create", "--resource=pods/exec")
    kubectl("create", "rolebinding", "exec-create", "-n", "proxied", "--role=exec-create", "--user=carol")
    from .conftest import eventually

    assert eventually(lambda: carol("exec", "-n", "proxied", "web", "-c", "app", "--", "true",
                                    check=False).returncode == 0)


def test_a_spdy_upgrade_is_spliced_byte_for_byte(proxied):
    cluster, _, _, _ = proxied
    ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    ctx.load_cert_chain(cluster.pki / "admin.crt", cluster.pki / "admin.key")
    with socket.create_connection(("127.0.0.1", cluster.api_port), timeout=30) as plain, \
            ctx.wrap_socket(plain, server_hostname="127.0.0.1") as conn:
        conn.sendall(b"POST /api/v1/namespaces/proxied/pods/old/exec?container=app&command=sh&stdin=true HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
        received = b""
        while b"\n" not in received.partition(b"\r\n\r\n")[2]:
            received += conn.recv(65536)
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
        assert rest == b"/exec/proxied/old/app?command=sh&stdin=true SPDY/3.1\n"
        frame = b"\x80\x03\x00\x01" + os.urandom(200_000)  # binary, larger than any buffer on the way
        conn.sendall(frame)
        echoed = b""
        while len(echoed) < len(frame):
            chunk = conn.recv(65536)
            assert chunk, "the splice closed early"
            echoed += chunk
    assert echoed == frame  # every byte, in order, through both connections
