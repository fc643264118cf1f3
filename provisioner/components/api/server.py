"""The secure port every control-plane component serves: /healthz, /livez, /readyz and /metrics.

Shared by kube-scheduler (10259), kube-controller-manager (10257) and kube-proxy. HTTPS always: with
--tls-cert-file/--tls-private-key-file when given, otherwise a self-signed certificate made at start
(as the Kubernetes components do when no certificate is configured), its key kept 0600 in a private
directory (--cert-dir, or a temporary one removed on exit).

Every request passes delegation.py first: a client certificate signed by the client CA
(--client-ca-file, else the CA of the authentication kubeconfig), a bearer token checked with a
TokenReview, or anonymous; health paths (--authorization-always-allow-paths) answer anyone,
system:masters anything, and the rest (/metrics) is a SubjectAccessReview through the authorization
kubeconfig, as kube-scheduler and kube-controller-manager delegate.

Checks are named callables returning True when healthy; `?verbose` lists them as `[+]name ok`.
`livez` checks count for /healthz and /livez (liveness: failing them gets the process restarted),
`readyz` checks (e.g. informers synced) only for /readyz.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from .delegation import Delegation

Check = Callable[[], bool]


def self_signed(directory: str, host: str = "localhost") -> tuple[str, str]:
    """Write a self-signed serving certificate for localhost/127.0.0.1 (and `host`); key mode 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{int(now.timestamp())}")])
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if host != "localhost":
        sans.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    cert_path, key_path = os.path.join(directory, "serving.crt"), os.path.join(directory, "serving.key")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class ComponentServer:
    component: str
    bind_address: str = "0.0.0.0"
    port: int = 0
    cert_file: str | None = None
    key_file: str | None = None
    cert_dir: str | None = None
    client_ca_pem: bytes | None = None
    registry: CollectorRegistry = REGISTRY
    livez: dict[str, Check] = field(default_factory=dict)
    readyz: dict[str, Check] = field(default_factory=dict)
    delegation: Delegation = field(default_factory=Delegation)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._tmp: str | None = None
        self.bound_port = 0

    def ssl_context(self) -> ssl.SSLContext:
        cert, key = self.cert_file, self.key_file
        if not (cert and key):
            directory = self.cert_dir or tempfile.mkdtemp(prefix=f"{self.component}-certs-")
            if not self.cert_dir:
                self._tmp = directory
            cert, key = self_signed(directory, socket.gethostname())
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if self.client_ca_pem:
            ctx.load_verify_locations(cadata=self.client_ca_pem.decode())
            ctx.verify_mode = ssl.CERT_OPTIONAL  # health checks need no certificate
        return ctx

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.delegation.middleware])
        # tables are read per request: checks may be added after start (leader election, informers)
        # /healthz is what kubeadm's liveness probe reads: it must not fail while caches are
        # merely unsynced (API server away), or the kubelet would restart a healthy process
        checks = {"/healthz": lambda: self.livez, "/livez": lambda: self.livez,
                  "/readyz": lambda: self.livez | self.readyz}
        for route, table in checks.items():
            app.router.add_get(route, self._health(table))
        app.router.add_get("/metrics", self._metrics)
        return app

    @staticmethod
    def _health(table: Callable[[], dict[str, Check]]):
        async def handler(request: web.Request) -> web.Response:
            results = {"ping": True}
            for name, check in table().items():
                try:
                    results[name] = bool(check())
                except Exception:
                    results[name] = False
            healthy = all(results.values())
            if "verbose" in request.query:
                lines = [f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed'}" for name, ok in results.items()]
                lines.append(f"{request.path.strip('/')} check {'passed' if healthy else 'failed'}")
                return web.Response(text="\n".join(lines) + "\n", status=200 if healthy else 500)
            failed = [n for n, ok in results.items() if not ok]
            return web.Response(text="ok" if healthy else f"failed: {', '.join(failed)}\n",
                                status=200 if healthy else 500)
        return handler

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind_address, self.port, ssl_context=self.ssl_context())
        await site.start()
        self.bound_port = site._server.sockets[0].getsockname()[1]  # port 0 picks a free one
        return self.bound_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
