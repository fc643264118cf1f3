"""kubelet: the HTTPS server on port 10250: /healthz, /pods, /containerLogs, /exec, /stats.

Every request is authenticated (a client certificate from authentication.x509.clientCAFile, or a
bearer token checked with a TokenReview) and authorized with a SubjectAccessReview on the Node:
the verb from the HTTP method, subresource `stats`, `metrics`, `log` or `spec` by path and
`proxy` for the rest (exec, attach, portForward, containerLogs), as kubelet maps them. Anonymous
requests get 401. Without tlsCertFile a self-signed serving certificate is made in the root dir.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import ssl
import threading

from aiohttp import WSMsgType, web

from ..api.client import ApiStatusError
from . import execstream, hostinfo, portforward, spdyexec

log = logging.getLogger("kubelet.server")
VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
         "DELETE": "delete"}
SUBRESOURCES = {"stats": "stats", "metrics": "metrics", "logs": "log", "spec": "spec",
                "checkpoint": "checkpoint"}
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
KUBELET = web.AppKey("kubelet", object)


def self_signed(directory: str, name: str, ip: str) -> tuple[str, str]:
    """kubelet's self-signed serving pair, <dir>/kubelet.crt and .key, made once."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = os.path.join(directory, "kubelet.crt"), os.path.join(directory,
                                                                               "kubelet.key")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}@{int(dt.datetime.now().timestamp())}")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .sign(key, hashes.SHA256()))
    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def subresource_of(path: str) -> str:
    return SUBRESOURCES.get(path.strip("/").split("/")[0], "proxy")


class KubeletServer:
    def __init__(self, kubelet, cfg: dict, args):
        self.kubelet = kubelet
        self.cfg = cfg
        self.args = args
        self.runner: web.AppRunner | None = None
        # the live TLS context of the port: servingcert loads a CA-signed pair into it
        self.tls: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        cert, key = self.cfg.get("tlsCertFile"), self.cfg.get("tlsPrivateKeyFile")
        if not cert or not key:
            cert, key = self_signed(os.path.join(self.args.root_dir, "pki"),
                                    self.kubelet.node_name, self.kubelet.node_ip)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        client_ca = self.cfg["authentication"]["x509"].get("clientCAFile")
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    async def start(self) -> None:
        app = web.Application(middlewares=[self.auth])
        app[KUBELET] = self.kubelet
        app.add_routes([
            web.get("/healthz", self.healthz),
            web.get("/pods", self.pods), web.get("/pods/", self.pods),
            web.get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs),
            web.route("*", "/exec/{namespace}/{pod}/{container}", self.exec),
            web.route("*", "/exec/{namespace}/{pod}/{uid}/{container}", self.exec),
            web.route("*", "/attach/{namespace}/{pod}/{container}", self.attach),
            web.route("*", "/attach/{namespace}/{pod}/{uid}/{container}", self.attach),
            web.get("/portForward/{namespace}/{pod}", self.port_forward),
            web.get("/portForward/{namespace}/{pod}/{uid}", self.port_forward),
            web.post("/portForward/{namespace}/{pod}", self.port_forward),  # SPDY/3.1 upgrade
            web.post("/portForward/{namespace}/{pod}/{uid}", self.port_forward),
            web.get("/stats/summary", self.stats_summary),
            web.get("/metrics/resource", self.metrics_resource),
            web.get("/metrics", self.metrics),
        ])
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        address = self.cfg.get("address") or "0.0.0.0"
        self.tls = self.ssl_context()
        site = web.TCPSite(self.runner, address, int(self.cfg["port"]), ssl_context=self.tls)
        await site.start()
        log.info("serving on https://%s:%s", address, self.cfg["port"])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # -- authentication and authorization -------------------------------------------------

    async def identity(self, request: web.Request) -> tuple[str, list[str]] | None:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport else None
        if peer:
            subject = dict(item[0] for item in peer.get("subject", ()))
            groups = [value for rdn in peer.get("subject", ()) for key, value in rdn
                      if key == "organizationName"]
            return subject.get("commonName", ""), groups
        header = request.headers.get("Authorization", "")
        client = self.kubelet.client
        if header.startswith("Bearer ") and client is not None and \
                self.cfg["authentication"]["webhook"].get("enabled", True):
            review = await client.create("authentication.k8s.io", "v1", "tokenreviews", {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": header[7:]}})
            status = review.get("status") or {}
            if status.get("authenticated"):
                user = status.get("user") or {}
                return user.get("username", ""), list(user.get("groups") or [])
        if self.cfg["authentication"].get("anonymous", {}).get("enabled"):
            return "system:anonymous", ["system:unauthenticated"]
        return None

    async def allowed(self, request: web.Request, user: str, groups: list[str]) -> bool:
        if self.cfg["authorization"].get("mode") == "AlwaysAllow":
            return True
        client = self.kubelet.client
        if client is None:
            return False
        review = await client.create("authorization.k8s.io", "v1", "subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": {
                "verb": VERBS.get(request.method, "get"), "resource": "nodes",
                "subresource": subresource_of(request.path), "name": self.kubelet.node_name}}})
        return bool((review.get("status") or {}).get("allowed"))

    @web.middleware
    async def auth(self, request: web.Request, handler):
        try:
            who = await self.identity(request)
            if who is None:
                return web.Response(status=401, text="Unauthorized")
            if not await self.allowed(request, *who):
                verb = VERBS.get(request.method, "get")
                return web.Response(status=403, text=(
                    f"Forbidden (user={who[0]}, verb={verb}, resource=nodes, "
                    f"subresource={subresource_of(request.path)})"))
        except (ApiStatusError, OSError) as error:
            return web.Response(status=503, text=f"authentication/authorization failed: {error}")
        return await handler(request)

    # -- handlers -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        items = []
        for worker in list(self.kubelet.workers.values()):
            pod = dict(worker.pod)
            if worker.last_status is not None:
                pod["status"] = worker.last_status
            items.append(pod)
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                  "items": items})

    def find_instance(self, request: web.Request, previous: bool = False):
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        container = request.match_info["container"]
        for worker in self.kubelet.workers.values():
            meta = worker.pod["metadata"]
            if meta.get("namespace") == ns and meta["name"] == name:
                instances = self.kubelet.snapshot.instances(worker.uid, container)
                index = 1 if previous else 0
                if len(instances) > index:
                    return instances[index]
                what = "previous terminated container" if previous else "container"
                raise web.HTTPNotFound(text=f'{what} "{container}" in pod "{name}" not found')
        raise web.HTTPNotFound(text=f'pod "{name}" in namespace "{ns}" not found on this node')

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        instance = self.find_instance(request, query.get("previous") in ("1", "true"))
        follow = query.get("follow") in ("1", "true")
        tail = int(query["tailLines"]) if query.get("tailLines", "").isdigit() else None
        limit = int(query["limitBytes"]) if query.get("limitBytes", "").isdigit() else None
        since = None
        if query.get("sinceSeconds", "").isdigit():
            since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(
                seconds=int(query["sinceSeconds"]))
        elif query.get("sinceTime"):
            since = dt.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        timestamps = query.get("timestamps") in ("1", "true")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0
        async for entry in self._log_entries(instance.id, follow, tail):
            stamp = entry.get("time", "")
            if since is not None and stamp:
                try:
                    if dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) < since:
                        continue
                except ValueError:
                    pass
            data = entry["data"].encode("utf-8", "surrogateescape")
            if timestamps:
                data = stamp.encode() + b" " + data
            if limit is not None:
                data = data[:max(0, limit - sent)]
            if data:
                await response.write(data)
                sent += len(data)
            if limit is not None and sent >= limit:
                break
        await response.write_eof()
        return response

    async def _log_entries(self, container_id: str, follow: bool, tail: int | None):
        """The runtime's log stream, read in a thread and handed over through a queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        stop = threading.Event()
        client = self.kubelet.runtime.client

        def pump() -> None:
            try:
                for entry in client.logs(container_id, follow=follow, tail=tail):
                    if stop.is_set():
                        break
                    asyncio.run_coroutine_threadsafe(queue.put(entry), loop).result()
            except Exception as error:  # noqa: BLE001 - ends the stream
                log.debug("log stream ended: %s", error)
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        try:
            while (entry := await queue.get()) is not None:
                yield entry
        finally:
            stop.set()

    async def exec(self, request: web.Request) -> web.StreamResponse:
        instance = self.find_instance(request)
        commands = request.query.getall("command", [])
        if not commands:
            raise web.HTTPBadRequest(text="you must specify at least one command for the "
                                          "container")
        if spdyexec.speaks_spdy(request):
            return await spdyexec.serve(request, self.kubelet.runtime.client.socket_path,
                                        {"container": instance.id, "cmd": commands})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="exec needs a WebSocket upgrade (subprotocol "
                                          "v5.channel.k8s.io or v4.channel.k8s.io) or SPDY/3.1")
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS)
        await ws.prepare(request)
        want = {1: request.query.get("stdout") in ("1", "true"),
                2: request.query.get("stderr") in ("1", "true")}
        stdin, tty = (request.query.get(key) in ("1", "true") for key in ("stdin", "tty"))
        if stdin or tty:      # the runtime's interactive exec, relayed channel for channel
            await execstream.relay(ws, self.kubelet.runtime.client.socket_path, {
                "container": instance.id, "cmd": commands, "stdin": stdin, "tty": tty}, want)
            return ws
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        client = self.kubelet.runtime.client

        def pump() -> None:
            try:
                for event in client.exec(instance.id, commands):
                    asyncio.run_coroutine_threadsafe(queue.put(event), loop).result()
            except Exception as error:  # noqa: BLE001 - reported on the error channel
                asyncio.run_coroutine_threadsafe(queue.put({"error": str(error)}), loop)
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)

        threading.Thread(target=pump, daemon=True).start()
        status = {"metadata": {}, "status": "Success"}
        while (event := await queue.get()) is not None:
            if "exit_code" in event:
                if event["exit_code"] != 0:
                    status = {"metadata": {}, "status": "Failure",
                              "message": f"command terminated with non-zero exit code: "
                                         f"exit status {event['exit_code']}",
                              "reason": "NonZeroExitCode",
                              "details": {"causes": [{"reason": "ExitCode",
                                                      "message": str(event["exit_code"])}]}}
            elif "error" in event:
                status = {"metadata": {}, "status": "Failure", "message": event["error"]}
            else:
                channel = 1 if event.get("stream") == "stdout" else 2
                if want[channel]:
                    await ws.send_bytes(bytes([channel]) +
                                        event["data"].encode("utf-8", "surrogateescape"))
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """The container's own stdin and terminal (pod spec stdin/tty), and its output from
        now on, over WebSocket as exec's channels (or SPDY/3.1 as exec's streams, spdyexec.py);
        the runtime's console holds them."""
        instance = self.find_instance(request)
        if spdyexec.speaks_spdy(request):
            return await spdyexec.serve(request, self.kubelet.runtime.client.socket_path,
                                        {"container": instance.id, "attach": True})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="attach needs a WebSocket upgrade (subprotocol "
                                          "v5.channel.k8s.io or v4.channel.k8s.io) or SPDY/3.1")
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS)
        await ws.prepare(request)
        want = {channel: request.query.get(name) in ("1", "true")
                for channel, name in ((1, "stdout"), (2, "stderr"))}
        await execstream.relay(ws, self.kubelet.runtime.client.socket_path,
                               {"container": instance.id, "attach": True}, want)
        return ws

    def pod_address(self, request: web.Request) -> str:
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        for worker in self.kubelet.workers.values():
            meta = worker.pod["metadata"]
            if meta.get("namespace") == ns and meta["name"] == name:
                if worker.pod["spec"].get("hostNetwork"):
                    return "127.0.0.1"
                sandbox = next((s for s in self.kubelet.snapshot.sandboxes.get(worker.uid, [])
                                if s.ready and s.ip), None)
                if sandbox is None:
                    raise web.HTTPBadRequest(text=f'pod "{name}" has no running sandbox')
                return sandbox.ip
        raise web.HTTPNotFound(text=f'pod "{name}" in namespace "{ns}" not found on this node')

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """Port-forward over WebSocket (v4.channel.k8s.io), as the Python client speaks it: port
        i has data channel 2i and error channel 2i+1; each channel first carries its port as two
        little-endian bytes; then bytes flow both ways on the data channels. kubectl's SPDY/3.1
        (plain, or tunnelled in WebSocket) is portforward.py's."""
        address = self.pod_address(request)
        if portforward.speaks_spdy(request):
            ns, name = request.match_info["namespace"], request.match_info["pod"]
            uid = next((w.uid for w in self.kubelet.workers.values()
                        if (w.pod["metadata"].get("namespace"), w.pod["metadata"]["name"])
                        == (ns, name)), request.match_info.get("uid", ""))
            return await portforward.serve(request, address, name, uid)
        ports = []
        for value in [*request.query.getall("ports", []), *request.query.getall("port", [])]:
            for item in value.split(","):
                if not item.strip().isdigit() or not 0 < int(item) < 65536:
                    raise web.HTTPBadRequest(text=f"invalid port {item!r}")
                ports.append(int(item))
        if not ports:
            raise web.HTTPBadRequest(text="port-forward needs at least one port (?ports=N)")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="port-forward needs a WebSocket upgrade (subprotocol "
                                          "v4.channel.k8s.io)")
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        writers: dict[int, asyncio.StreamWriter] = {}
        pumps = []
        for index, port in enumerate(ports):
            header = port.to_bytes(2, "little")
            await ws.send_bytes(bytes([2 * index]) + header)
            await ws.send_bytes(bytes([2 * index + 1]) + header)
            try:
                reader, writer = await asyncio.open_connection(address, port)
            except OSError as error:
                await ws.send_bytes(bytes([2 * index + 1]) + (
                    f"error forwarding port {port} to pod: {error}").encode())
                continue
            writers[2 * index] = writer
            pumps.append(asyncio.create_task(self._pod_to_client(reader, ws, 2 * index)))
        try:
            async for message in ws:
                if message.type != WSMsgType.BINARY or not message.data:
                    continue
                writer = writers.get(message.data[0])
                if writer is not None and len(message.data) > 1:
                    writer.write(message.data[1:])
                    await writer.drain()
        finally:
            for task in pumps:
                task.cancel()
            for writer in writers.values():
                writer.close()
        return ws

    @staticmethod
    async def _pod_to_client(reader: asyncio.StreamReader, ws: web.WebSocketResponse,
                             channel: int) -> None:
        while data := await reader.read(65536):
            await ws.send_bytes(bytes([channel]) + data)
        await ws.close()

    async def stats_summary(self, request: web.Request) -> web.Response:
        memory = hostinfo.meminfo()
        total, free, inodes, free_inodes = hostinfo.disk(self.kubelet.root_dir)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        used = memory.get("MemTotal", 0) - memory.get("MemAvailable", 0)
        node = {"nodeName": self.kubelet.node_name, "startTime": now,
                "memory": {"time": now, "availableBytes": memory.get("MemAvailable", 0),
                           "usageBytes": used, "workingSetBytes": used},
                "fs": {"time": now, "availableBytes": free, "capacityBytes": total,
                       "usedBytes": total - free, "inodesFree": free_inodes, "inodes": inodes}}
        pods = [{"podRef": {"name": w.pod["metadata"]["name"],
                            "namespace": w.pod["metadata"].get("namespace", ""), "uid": w.uid},
                 "startTime": w.start_time, "containers": []}
                for w in self.kubelet.workers.values()]
        return web.json_response({"node": node, "pods": pods})

    async def metrics_resource(self, request: web.Request) -> web.Response:
        from . import resourcemetrics  # node, container and pod CPU and memory for metrics-server

        return web.Response(text=await resourcemetrics.text(self.kubelet), content_type="text/plain")

    async def metrics(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
