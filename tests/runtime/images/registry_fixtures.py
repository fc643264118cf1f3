"""Debian's docker-registry on loopback, plain HTTP, TLS, or behind a tiny token server.

The token server is a test fake at the network boundary: it checks basic credentials and signs
JWTs (RS256, the signing certificate in x5c) that the registry verifies with its
`auth: token: rootcertbundle`.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import free_port as shared_free_port

REGISTRY_BINARY = "/usr/bin/docker-registry"
TOKEN_USER, TOKEN_PASSWORD = "alice", "wonderland"
IDENTITY_TOKEN = "alice-refresh-token"     # the OAuth2 refresh token the token server honours


def free_port() -> int:
    return shared_free_port()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls_files(directory: str) -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(_name("test registry CA"))
               .issuer_name(_name("test registry CA")).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())

    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key")]
    _write(paths[0], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths[1], cert.public_bytes(serialization.Encoding.PEM))
    _write(paths[2], key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return paths[0], paths[1], paths[2]


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


@dataclass
class Registry:
    host: str                  # "127.0.0.1:port"
    process: subprocess.Popen
    ca_file: str | None = None
    log_path: str = ""
    tokens: "TokenServer | None" = None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(directory: str, tls: bool = False, token_realm: str | None = None,
                   token_cert: str | None = None, htpasswd: str | None = None,
                   client_cas: str | None = None) -> Registry:
    """`client_cas`: a CA file; clients must then present a certificate it signed."""
    port = free_port()
    lines = [
        "version: 0.1",
        "log: {level: info}",
        "storage:",
        f"  filesystem: {{rootdirectory: {os.path.join(directory, 'storage')}}}",
        "  delete: {enabled: true}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    ca_file = None
    if tls:
        ca_file, cert, key = make_tls_files(directory)
        lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if client_cas:
            lines += [f"    clientcas: [{client_cas}]"]
    if token_realm:
        lines += ["auth:", "  token:", f"    realm: {token_realm}", "    service: test-registry",
                  "    issuer: test-token-server", f"    rootcertbundle: {token_cert}"]
    if htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: test-basic", f"    path: {htpasswd}"]
    config = os.path.join(directory, "config.yml")
    _write(config, ("\n".join(lines) + "\n").encode())
    log_path = os.path.join(directory, "registry.log")
    log = open(log_path, "wb")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", config], stdout=log,
                               stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", process, ca_file, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {open(log_path).read()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return registry
        time.sleep(0.05)
    registry.stop()
    raise RuntimeError(f"docker-registry did not listen on {port}: {open(log_path).read()}")


def write_htpasswd(directory: str) -> str:
    """An htpasswd file (bcrypt, as docker-registry requires) for alice:wonderland."""
    import bcrypt
    path = os.path.join(directory, "htpasswd")
    hashed = bcrypt.hashpw(TOKEN_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    _write(path, f"{TOKEN_USER}:{hashed}\n".encode())
    return path


class TokenServer:
    """Issues registry tokens to alice:wonderland for any repository she asks about."""

    def __init__(self, directory: str):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = (x509.CertificateBuilder().subject_name(_name("test token signer"))
                     .issuer_name(_name("test token signer")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(directory, "token-signer.crt")
        _write(self.cert_path, self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
                server.requests.append(query)
                expected = "Basic " + base64.b64encode(
                    f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(query)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802 - OAuth2: grant_type=refresh_token (identity tokens)
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                server.requests.append(form)
                if form.get("grant_type") != "refresh_token" or \
                        form.get("refresh_token") != IDENTITY_TOKEN:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"access_token": server.token(form)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, query: dict) -> str:
        access = []
        for scope in query.get("scope", "").split(" "):
            if scope.count(":") >= 2:
                kind, name, actions = scope.split(":", 2)
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": "test-token-server", "sub": TOKEN_USER, "aud": query.get("service"),
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()),
                  "access": access}
        x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [x5c]})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def registry_catalog(registry: Registry) -> dict:
    """Plain-HTTP helper for assertions on what the registry holds."""
    context = ssl.create_default_context(cafile=registry.ca_file) if registry.ca_file else None
    scheme = "https" if registry.ca_file else "http"
    with urllib.request.urlopen(f"{scheme}://{registry.host}/v2/_catalog", context=context) as r:
        return json.load(r)
