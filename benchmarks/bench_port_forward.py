"""Measures `kubectl port-forward` through the API server to the kubelet on a one-machine cluster
(`provisioner dev cluster`'s DevNodeCluster), over kubectl's two transports: SPDY tunnelled in
WebSocket (the default) and a plain SPDY/3.1 upgrade (KUBECTL_PORT_FORWARD_WEBSOCKETS=false).

- Download and upload throughput (MiB/s) of SIZE_MIB through one forwarded connection, into a
  python:3.11 pod (downloads: a file served by http.server; uploads: a socket answering the
  SHA-256 of what it read, once the client half-closed).
- Latency of small requests: REQUESTS sequential HTTP GETs of a tiny page, each on a new local
  connection (a new stream pair in the same SPDY session); p50 and p99.

Needs root (containers). Writes benchmarks/results/port_forward.json and prints it. Run with
`sudo .venv/bin/python benchmarks/bench_port_forward.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.dev import DevNodeCluster  # noqa: E402

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
SIZE_MIB = int(os.environ.get("BENCH_SIZE_MIB", 64))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 50))
SERVER = ("import hashlib, http.server, os, socketserver, threading\n"
          "os.makedirs('/srv', exist_ok=True); os.chdir('/srv')\n"
          "open('index.html', 'w').write('ok\\n')\n"
          f"open('blob', 'wb').write(os.urandom({SIZE_MIB} * 1024 * 1024))\n"
          "class Digest(socketserver.StreamRequestHandler):\n"
          "    def handle(self):\n"
          "        digest = hashlib.sha256()\n"
          "        while chunk := self.rfile.read1(1 << 16):\n"
          "            digest.update(chunk)\n"
          "        self.wfile.write(digest.hexdigest().encode())\n"
          "threading.Thread(target=socketserver.ThreadingTCPServer(('', 8001), Digest)"
          ".serve_forever, daemon=True).start()\n"
          "http.server.ThreadingHTTPServer(('', 8000), http.server.SimpleHTTPRequestHandler)"
          ".serve_forever()\n")


def kubectl(env: dict, *args: str) -> str:
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def measure(env: dict, base: Path, websockets: bool) -> dict:
    out = base / f"pf-{websockets}.out"
    process = subprocess.Popen(
        [KUBECTL, "port-forward", "pod/bench-web", ":8000", ":8001"], stdout=open(out, "w"),
        stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(env, KUBECTL_PORT_FORWARD_WEBSOCKETS=str(websockets).lower()))
    try:
        found = wait(lambda: len(f := re.findall(r"127\.0\.0\.1:(\d+) -> (\d+)",
                                                 out.read_text())) == 2 and f, 60, "kubectl")
        local = {int(theirs): int(ours) for ours, theirs in found}
        latencies = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{local[8000]}/index.html") as r:
                r.read()
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{local[8000]}/blob") as r:
            size = len(r.read())
        download = size / (time.perf_counter() - start) / 2**20
        payload = os.urandom(SIZE_MIB * 2**20)
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", local[8001])) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: sock.recv(1 << 16), b""))
        upload = len(payload) / (time.perf_counter() - start) / 2**20
        assert answer == hashlib.sha256(payload).hexdigest().encode(), answer
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    latencies.sort()
    return {"download_mib_per_s": round(download, 1), "upload_mib_per_s": round(upload, 1),
            "small_request_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                                 "p99": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000,
                                              1)}}


def main() -> None:
    keep = os.environ.get("BENCH_KEEP")            # a directory: keep logs there to read
    with tempfile.TemporaryDirectory(prefix="bench-port-forward-") as tmp:
        base = Path(keep or tmp)
        cluster = DevNodeCluster(base, node_name="bench-pf-node", log=lambda line: None)
        cluster.start()
        try:
            env = dict(os.environ, KUBECONFIG=str(cluster.api.kubeconfig), HOME=str(base))
            manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-web"},
                        "spec": {"nodeName": cluster.node_name, "containers": [{
                            "name": "main", "image": "python:3.11",
                            "command": ["python3", "-c", SERVER],
                            "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1}}]}}
            subprocess.run([KUBECTL, "apply", "-f", "-"], input=json.dumps(manifest), env=env,
                           text=True, check=True, capture_output=True)
            kubectl(env, "wait", "--for=condition=Ready", "pod/bench-web", "--timeout=120s")
            results = {"websocket_tunnel": measure(env, base, True),
                       "spdy": measure(env, base, False)}
        finally:
            cluster.stop()
    result = {
        "benchmark": "port_forward",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    # a shared machine: other work running beside the benchmark slows every figure
                    "load_average_1m_at_end": round(os.getloadavg()[0], 1)},
        "size_mib": SIZE_MIB, "requests": REQUESTS, **results,
    }
    out = ROOT / "benchmarks" / "results" / "port_forward.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
