"""Fixtures for the runtime network tests: a real bridge, real namespaces, real iptables.

Everything uses a test bridge and subnet of its own (prtest<pid>, 10.199.<pid%256>.0/24) and a netns
directory of its own, so these tests run beside others that use the runtime defaults; each test
gets a fresh network and tears all of it down (bridge, veths, chains, namespaces, state).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from provisioner.components.runtime.net import Network
from tests.conftest import free_port

# per pytest process, so two sessions on one machine (two engineers, CI jobs) never share them
TEST_BRIDGE = f"prtest{os.getpid() % 100000}"
TEST_SUBNET = f"10.199.{os.getpid() % 256}.0/24"
TEST_GATEWAY = TEST_SUBNET.replace(".0/24", ".1")
TEST_RUN_DIR = f"/run/provisioner-runtime-nettest-{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _require_root():
    assert os.geteuid() == 0, "the network tests need root (bridges, namespaces, iptables)"


@pytest.fixture
def make_network(tmp_path):
    """Build Network objects on the test bridge sharing one state dir (as a restarted daemon)."""
    made: list[Network] = []

    def make() -> Network:
        network = Network(bridge=TEST_BRIDGE, subnet=TEST_SUBNET, state_dir=str(tmp_path / "state"),
                          netns_dir=os.path.join(TEST_RUN_DIR, "netns"))
        made.append(network)
        return network

    yield make
    if made:
        made[0].teardown_all()
    shutil.rmtree(TEST_RUN_DIR, ignore_errors=True)


@pytest.fixture
def network(make_network) -> Network:
    network = make_network()
    network.ensure_bridge()
    return network


# Runs argv[2:] inside the network namespace pinned at argv[1] (setns, then exec): a helper of the
# tests only, used instead of preexec_fn, which is unsafe in a process that has threads.
NSENTER = """
import ctypes, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
    sys.exit("setns into " + sys.argv[1] + " failed: " + os.strerror(ctypes.get_errno()))
os.close(fd)
os.execv(sys.argv[2], sys.argv[2:])
"""


def in_netns(path: str, argv: list[str]) -> list[str]:
    return [sys.executable, "-c", NSENTER, path, *argv]


def run_in_netns(path: str, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(in_netns(path, argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def ping_from(path: str, address: str) -> subprocess.CompletedProcess:
    return run_in_netns(path, ["/bin/busybox", "ping", "-c1", "-W2", address])


SERVER = r"""
import socket, sys
proto, port = sys.argv[1], int(sys.argv[2])
if proto == "tcp":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    print("ready", flush=True)
    while True:
        conn, peer = s.accept()
        conn.sendall(b"hello from container, you are " + peer[0].encode()); conn.close()
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(100)
        s.sendto(b"udp reply to " + data, peer)
"""


@pytest.fixture
def serve_in_netns():
    """Start a small TCP/UDP server inside a netns; stopped at the end of the test."""
    servers: list[subprocess.Popen] = []

    def start(path: str, port: int, proto: str = "tcp") -> subprocess.Popen:
        server = subprocess.Popen(in_netns(path, [sys.executable, "-c", SERVER, proto, str(port)]),
                                  stdout=subprocess.PIPE, text=True)
        servers.append(server)
        assert server.stdout.readline().strip() == "ready"
        return server

    yield start
    for server in servers:
        server.kill()
        server.wait()


def free_host_port(proto: str = "tcp") -> int:
    return free_port(proto, address="0.0.0.0")


def host_address() -> str:
    """A non-loopback IPv4 address of the host outside the test bridge (its gateway if none)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        bridge = ipr.link_lookup(ifname=TEST_BRIDGE)
        for addr in ipr.addr("dump", family=socket.AF_INET):
            ip = addr.get("IFA_ADDRESS")
            if not ip.startswith("127.") and addr["index"] not in bridge:
                return ip
    return TEST_GATEWAY


def tcp_fetch(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as conn:
        return conn.recv(200)


def iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
