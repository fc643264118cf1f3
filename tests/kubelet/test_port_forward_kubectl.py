"""Real kubectl port-forward through the real API server to the kubelet and into a pod serving
HTTP: over SPDY tunnelled in WebSocket (kubectl's default) and over a plain SPDY/3.1 upgrade
(KUBECTL_PORT_FORWARD_WEBSOCKETS=false), pages fetched through the forwarded local port and an
upload answered after the client's half-close, two ports in one kubectl."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import pod_manifest, prepare_namespace, wait_for

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
BIG = 300 * 1024   # several SPDY windows' worth, one way
# a page whose bytes are known without fetching them: the digest of a deterministic pattern
SERVER = ("import hashlib, http.server, os\n"
          "os.makedirs('/srv', exist_ok=True)\n"
          "open('/srv/index.html', 'w').write('served-through-port-forward\\n')\n"
          f"open('/srv/big.bin', 'wb').write(bytes(range(256)) * {BIG // 256})\n"
          "os.chdir('/srv')\n"
          "import socketserver, threading\n"
          "class Digest(socketserver.StreamRequestHandler):\n"   # port 8001: sha256 of the upload
          "    def handle(self):\n"
          "        digest = hashlib.sha256()\n"
          "        while chunk := self.rfile.read1(65536):\n"
          "            digest.update(chunk)\n"
          "        self.wfile.write(digest.hexdigest().encode())\n"
          "threading.Thread(target=socketserver.ThreadingTCPServer(('', 8001), Digest)"
          ".serve_forever, daemon=True).start()\n"
          "http.server.ThreadingHTTPServer(('', 8000), http.server.SimpleHTTPRequestHandler)"
          ".serve_forever()\n")
UPLOAD = os.urandom(1024 * 1024)


@pytest.fixture(scope="module")
def web(api, kubelet, cluster):
    namespace = f"pf-kubectl-{uuid.uuid4().hex[:6]}"
    prepare_namespace(api, cluster, namespace)
    api.create_namespaced_pod(namespace, pod_manifest("web", kubelet.node, [
        {"name": "main", "image": "python:3.11", "command": ["python3", "-c", SERVER],
         "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1}}]))
    wait_for(lambda: (s := api.read_namespaced_pod("web", namespace).status.container_statuses)
             and s[0].ready, 120, what="the web pod ready")
    yield namespace
    api.delete_namespace(namespace)


class PortForward:
    """`kubectl port-forward pod/web :<port>` in the background, its local port read from its
    output."""

    def __init__(self, cluster, namespace: str, remote: list[int], websockets: bool, base: Path):
        self.out, self.err = base / "pf.out", base / "pf.err"
        env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), HOME=str(base),
                   KUBECTL_PORT_FORWARD_WEBSOCKETS="true" if websockets else "false")
        self.process = subprocess.Popen(
            [KUBECTL, "-n", namespace, "port-forward", "-v=4", "pod/web",
             *(f":{port}" for port in remote)],
            stdout=open(self.out, "w"), stderr=open(self.err, "w"), env=env,
            start_new_session=True)
        found = wait_for(lambda: self.process.poll() is None and len(listening := re.findall(
            r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", self.out.read_text()))
            == len(remote) and listening, 60, what=f"kubectl port-forward listening ({self.err})")
        self.local = {int(theirs): int(ours) for ours, theirs in found}

    def get(self, path: str, remote: int = 8000) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.local[remote]}{path}",
                                    timeout=60) as reply:
            return reply.status, reply.read()

    def upload(self, data: bytes, remote: int = 8001) -> bytes:
        """Send data, half-close, and read the answer to the end."""
        with socket.create_connection(("127.0.0.1", self.local[remote]), timeout=60) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.err.read_text()


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy"])
def test_kubectl_port_forward_fetches_pages(cluster, web, tmp_path, websockets):
    forward = PortForward(cluster, web, [8000, 8001], websockets, tmp_path)
    try:
        # a megabyte up, past every SPDY window, then our half-close reaches the pod
        assert forward.upload(UPLOAD) == hashlib.sha256(UPLOAD).hexdigest().encode()
        for _ in range(3):      # each local connection is a new stream pair in one session
            assert forward.get("/index.html") == (200, b"served-through-port-forward\n")
        status, body = forward.get("/big.bin")
        assert status == 200 and len(body) == BIG
        assert hashlib.sha256(body).digest() == \
            hashlib.sha256(bytes(range(256)) * (BIG // 256)).digest()
    finally:
        log = forward.stop()
    # the path under test was the one taken: no fallback from the WebSocket tunnel to SPDY
    assert "fallback to secondary dialer" not in log, log
    assert ("Before WebSocket Upgrade Connection" in log) == websockets, log


def test_a_port_nothing_listens_on_is_reported_by_kubectl(cluster, web, tmp_path):
    forward = PortForward(cluster, web, [8999], True, tmp_path)
    try:
        with pytest.raises(OSError):    # the connection is closed without an answer
            forward.get("/", 8999)
        wait_for(lambda: "error forwarding port 8999 to pod web" in forward.err.read_text(), 30,
                 what="kubectl reporting the kubelet's error")
    finally:
        forward.stop()
