"""The kubelet proxy: pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy.

As kube-apiserver's connect subresources: the API server authorizes the request, finds the pod's
node and its kubelet (the node's address by --kubelet-preferred-address-types, the port from
status.daemonEndpoints.kubeletEndpoint.Port, 10250 when unset) and forwards the request over
HTTPS with the --kubelet-client-certificate, checking the kubelet's serving certificate against
--kubelet-certificate-authority when one is given (kube-apiserver skips that check without it).

Streaming (exec, attach, port-forward) is a protocol upgrade: WebSocket (v5.channel.k8s.io, v4,
and SPDY tunnelled in WebSocket for port-forward) or plain SPDY/3.1. The upgrade request is sent
on to the kubelet as is; once it answers 101, the two connections are spliced byte for byte, so
any subprotocol the client and kubelet agree on passes through unchanged.

Entered from server.py (`ApiServer.resources`) before the generic resource API.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from .errors import ApiError
from .registry import BY_KIND
from .storage import Storage

# pod subresource -> (kubelet path, query parameters passed on, in kube-apiserver's names)
POD_SUBRESOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "log": ("containerLogs", ("follow", "previous", "timestamps", "sinceSeconds", "sinceTime",
                              "tailLines", "limitBytes")),
    "exec": ("exec", ("command", "stdin", "stdout", "stderr", "tty")),
    "attach": ("attach", ("stdin", "stdout", "stderr", "tty")),
    "portforward": ("portForward", ("port", "ports")),   # clients send ports= (PortForwardOptions)
}
STREAMING = ("exec", "attach", "portforward")
DEFAULT_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
DEFAULT_KUBELET_PORT = 10250
# request headers an upgrade carries to the kubelet; credentials never leave the API server
UPGRADE_HEADERS = ("upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                   "sec-websocket-protocol", "sec-websocket-extensions", "x-stream-protocol-version",
                   "user-agent", "origin")
PLAIN_HEADERS = ("accept", "content-type", "user-agent", "x-stream-protocol-version")
VERB_BY_METHOD = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                  "DELETE": "delete", "OPTIONS": "get"}
HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Target:
    """What a URL asks of the kubelet: pods/<sub> of a pod, or nodes/proxy/<path> of a node."""
    resource: str  # "pods" or "nodes"
    namespace: str | None
    name: str
    sub: str
    path: str = ""  # nodes/proxy: the kubelet path after /proxy/


def served_by_kubelet(parts: list[str]) -> Target | None:
    """The Target for path segments after /api, or None when this module does not serve them."""
    if len(parts) == 6 and parts[:2] == ["v1", "namespaces"] and parts[3] == "pods" \
            and parts[5] in POD_SUBRESOURCES:
        return Target("pods", parts[2], parts[4], parts[5])
    if len(parts) >= 4 and parts[0] == "v1" and parts[1] == "nodes" and parts[3] == "proxy":
        return Target("nodes", None, parts[2], "proxy", "/".join(parts[4:]))
    return None


def is_upgrade(request: web.Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in tokens and bool(request.headers.get("Upgrade"))


def is_websocket(request: web.Request) -> bool:
    return is_upgrade(request) and request.headers.get("Upgrade", "").lower() == "websocket"


class KubeletClient:
    """TLS settings for talking to kubelets, from kube-apiserver's --kubelet-* flags."""

    def __init__(self, cert: str | None = None, key: str | None = None, ca: str | None = None,
                 address_types: tuple[str, ...] = DEFAULT_ADDRESS_TYPES):
        self.address_types = address_types
        self.verify = bool(ca)
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not ca:  # as kube-apiserver without --kubelet-certificate-authority
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key or cert)
        self.ssl = ctx
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def node_address(node: dict, address_types: tuple[str, ...]) -> str | None:
    addresses = (node.get("status") or {}).get("addresses") or []
    for wanted in address_types:
        for a in addresses:
            if a.get("type") == wanted and a.get("address"):
                return a["address"]
    return None


def kubelet_port(node: dict) -> int:
    port = (((node.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return port if isinstance(port, int) and 0 < port < 65536 else DEFAULT_KUBELET_PORT


def pick_container(pod: dict, wanted: str | None) -> str:
    """The container a request means, with kube-apiserver's refusals."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in spec.get("containers") or []]
    if not wanted:
        if len(containers) == 1:
            return containers[0]
        raise ApiError.bad_request(f"a container name must be specified for pod {name}, "
                                   f"choose one of: [{' '.join(containers)}]")
    every = containers + [c.get("name") for key in ("initContainers", "ephemeralContainers")
                          for c in spec.get(key) or []]
    if wanted not in every:
        raise ApiError.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


Authorize = Callable[..., Any]


class NodeProxy:
    def __init__(self, storage: Storage, kubelet: KubeletClient, authorize: Authorize):
        self.storage = storage
        self.kubelet = kubelet
        self.authorize = authorize

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        res = BY_KIND[("", "Pod" if target.resource == "pods" else "Node")]
        verb = VERB_BY_METHOD.get(request.method)
        if verb is None:
            raise ApiError.method_not_allowed()
        await self.authorize(request, verb, res, target.namespace, target.name, target.sub)
        if target.sub in STREAMING and is_websocket(request) and verb != "create":
            # a WebSocket handshake is a GET, yet it opens a stream: ask for create as for SPDY's POST
            await self.authorize(request, "create", res, target.namespace, target.name, target.sub)
        if target.resource == "pods":
            node_name, path = await self._pod_location(request, target)
            if node_name is None:  # not scheduled yet: no logs to show
                return web.Response(body=b"", content_type="text/plain")
        else:
            # the raw path after /proxy, so a trailing slash (directory listings) survives
            node_name = target.name
            path = request.path.split(f"/nodes/{target.name}/proxy", 1)[1] or "/"
            if request.query_string:
                path += "?" + request.query_string
        host, port = await self._kubelet(node_name)
        if is_upgrade(request):
            return await self._splice(request, host, port, path)
        return await self._forward(request, host, port, path)

    async def _pod_location(self, request: web.Request, target: Target) -> tuple[str | None, str]:
        pod = await self.storage.get("pods", target.namespace, target.name)
        if pod is None:
            raise ApiError.not_found("pods", target.name)
        kubelet_path, params = POD_SUBRESOURCES[target.sub]
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name and target.sub != "log":
            raise ApiError.bad_request(f"pod {target.name} does not have a host assigned")
        segments = [target.namespace or "", target.name]
        if target.sub != "portforward":
            segments.append(pick_container(pod, request.query.get("container")))
        query = [(k, v) for k, v in request.query.items() if k in params]
        path = "/" + kubelet_path + "/" + "/".join(quote(s, safe="") for s in segments)
        return node_name or None, path + ("?" + urlencode(query) if query else "")

    async def _kubelet(self, node_name: str) -> tuple[str, int]:
        node = await self.storage.get("nodes", None, node_name)
        if node is None:
            raise ApiError.not_found("nodes", node_name)
        host = node_address(node, self.kubelet.address_types)
        if host is None:
            raise ApiError(500, "InternalError", f'no preferred addresses found; known addresses: '
                           f'{[a.get("type") for a in (node.get("status") or {}).get("addresses") or []]}')
        return host, kubelet_port(node)

    @staticmethod
    def _url(host: str, port: int, path: str) -> str:
        return f"https://{'[' + host + ']' if ':' in host else host}:{port}{path}"

    async def _forward(self, request: web.Request, host: str, port: int, path: str) -> web.StreamResponse:
        """A plain request (logs, nodes/proxy): the kubelet's answer streamed back as it comes."""
        url = self._url(host, port, path)
        headers = {k: v for k, v in request.headers.items() if k.lower() in PLAIN_HEADERS}
        body = await request.read() if request.can_read_body else None
        try:
            upstream = await self.kubelet.session().request(request.method, url, headers=headers, data=body,
                                                            allow_redirects=False)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise ApiError(500, "InternalError", f'{request.method.capitalize()} "{url}": {exc}') from None
        async with upstream:
            resp = web.StreamResponse(status=upstream.status)
            for name in ("Content-Type", "Content-Encoding"):
                if name in upstream.headers:
                    resp.headers[name] = upstream.headers[name]
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError):
                pass  # the kubelet or the client went away mid-stream: the stream just ends
            return resp

    async def _splice(self, request: web.Request, host: str, port: int, path: str) -> web.StreamResponse:
        """An upgrade: pass the handshake on, and once the kubelet switches protocols, splice."""
        url = self._url(host, port, path)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self.kubelet.ssl, server_hostname=host if self.kubelet.verify else None,
                limit=HEAD_LIMIT), 10)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            raise ApiError(500, "InternalError", f'error dialing backend: {url}: {exc}') from None
        try:
            lines = [f"{request.method} {path} HTTP/1.1", f"Host: {host}:{port}"]
            lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() in UPGRADE_HEADERS]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError) as exc:
            writer.close()
            raise ApiError(500, "InternalError", f"error upgrading connection to {url}: {exc}") from None
        if status != 101:
            return await _relay_refusal(writer, reader, head, status)
        return await _Splice(request, reader, writer).run(head)


async def _relay_refusal(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, head: bytes,
                         status: int) -> web.Response:
    """The kubelet declined the upgrade: hand its answer (status, type, body) to the client."""
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    try:
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.read(1024 * 1024)
    except (OSError, ValueError, asyncio.IncompleteReadError):
        body = b""
    finally:
        writer.close()
    return web.Response(status=status, body=body,
                        headers={"Content-Type": headers.get("content-type", "text/plain")})


class _Splice:
    """Both directions of an upgraded connection, byte for byte, with flow control each way."""

    HIGH_WATER = 1024 * 1024

    def __init__(self, request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.request = request
        self.reader, self.writer = reader, writer
        self.client_closed = asyncio.Event()
        self.paused = False

    # the client -> kubelet direction: aiohttp hands us the connection's bytes as a "parser"
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self.writer.is_closing():
            return False, b""
        self.writer.write(data)
        transport = self.request.transport
        if not self.paused and transport is not None and \
                self.writer.transport.get_write_buffer_size() > self.HIGH_WATER:
            self.paused = True
            transport.pause_reading()
            asyncio.get_running_loop().create_task(self._resume_when_drained())
        return False, b""

    def feed_eof(self) -> None:
        self.client_closed.set()
        self.writer.close()

    async def _resume_when_drained(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.paused = False
        if self.request.transport is not None:
            self.request.transport.resume_reading()

    async def run(self, head: bytes) -> web.StreamResponse:
        request = self.request
        request.protocol.set_parser(self)  # type: ignore[arg-type]  # every later client byte comes here
        out = request.writer
        try:
            await out.write(head)
            while True:
                chunk = await self.reader.read(64 * 1024)
                if not chunk:
                    break
                await out.write(chunk)
        except (ConnectionError, OSError, asyncio.CancelledError, RuntimeError):
            pass
        finally:
            self.writer.close()
            request.protocol.force_close()
        return _Spliced(status=101)


class _Spliced(web.StreamResponse):
    """The response of a spliced connection: everything was already written by _Splice."""

    async def prepare(self, request: Any) -> None:  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None
