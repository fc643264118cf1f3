"""Test support: named network namespaces (`ip netns`) the tests own, work done inside them from
this process (a thread that entered the namespace), and a TCP forwarder that lets a process inside
reach the API server on the host's loopback (what a node's route to the API server is in a cluster).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

CLONE_NEWNET = 0x40000000

# A web server run in a namespace (each argument: an address:port to listen on) that answers
# each request with the client address it saw, so tests see whether traffic was masqueraded.
WHO = r"""
import http.server, sys, threading
class Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
for where in sys.argv[1:]:
    address, port = where.split(":")
    server = http.server.ThreadingHTTPServer((address, int(port)), Who)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""
_libc = ctypes.CDLL(None, use_errno=True)


class Netns:
    def __init__(self, name: str):
        self.name = name
        self.path = f"/run/netns/{name}"
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.ip("link", "set", "lo", "up")
        self._pool = ThreadPoolExecutor(max_workers=4, initializer=self._enter,
                                         thread_name_prefix=f"in-{name}")
        self.processes: list[subprocess.Popen] = []

    def _enter(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.path}")
        finally:
            os.close(fd)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def run(self, argv: list[str], **options) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, check=False, timeout=60, **options)

    def popen(self, argv: list[str], **options) -> subprocess.Popen:
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **options)
        self.processes.append(process)
        return process

    def call(self, function, *args):
        """Run function(*args) in a thread inside the namespace (its sockets live there)."""
        return self._pool.submit(function, *args).result()

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._pool.shutdown(wait=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def _listen(address: str, port: int) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(64)
    return listener


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class Forwarder:
    """127.0.0.1:<port> inside the namespace -> 127.0.0.1:<upstream> on the host."""

    def __init__(self, netns: Netns, port: int, upstream: int):
        self.listener = netns.call(_listen, "127.0.0.1", port)   # created inside: bound there
        self.upstream = upstream
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self.listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
