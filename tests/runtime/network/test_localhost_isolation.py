"""Containers on the bridge cannot reach the host's loopback-only services.

``route_localnet`` is on for the bridge (loopback publishing needs it), which also stops the
kernel dropping packets from the bridge addressed to 127.0.0.0/8 as martians. A container with
CAP_NET_RAW can write such a packet by hand (CVE-2020-8558); the runtime must drop it.
"""

from __future__ import annotations

import select
import socket
import sys

from pyroute2 import IPRoute

from provisioner.components.runtime.net import PortMapping

from .conftest import TEST_BRIDGE, free_host_port, iptables_save, run_in_netns, tcp_fetch

# Writes UDP datagrams as raw Ethernet frames out of eth0 to the bridge's MAC, each
# "<destination ip> <payload>" of argv[4:] in order, from one CPU so they stay in order.
RAW_SENDER = r"""
import os, socket, struct, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
bridge_mac, source_ip, port = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2], int(sys.argv[3])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(("eth0", 0))
own_mac = sock.getsockname()[4]

def checksum(header):
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

for item in sys.argv[4:]:
    destination, payload = item.split(" ", 1)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload.encode()
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(source_ip), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    sock.send(bridge_mac + own_mac + b"\x08\x00" + header + udp)
print("sent", flush=True)
"""


def _bridge_mac() -> str:
    with IPRoute() as ipr:
        return ipr.link("get", index=ipr.link_lookup(ifname=TEST_BRIDGE)[0])[0].get(
            "IFLA_ADDRESS")


def test_a_crafted_packet_from_a_container_to_host_loopback_is_dropped(network):
    path = network.create_netns("attacker")
    attachment = network.attach("attacker", path)
    port = free_host_port("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as loopback_only, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as on_gateway:
        loopback_only.bind(("127.0.0.1", port))
        on_gateway.bind((attachment.gateway, port))
        on_gateway.settimeout(10)

        sent = run_in_netns(path, [sys.executable, "-c", RAW_SENDER, _bridge_mac(),
                                   attachment.ip, str(port), "127.0.0.1 to-loopback",
                                   f"{attachment.gateway} to-gateway"])
        assert sent.stdout.strip() == "sent", sent.stderr

        # the same path, crafted the same way, reaches a host address: the frames did arrive
        assert on_gateway.recvfrom(100)[0] == b"to-gateway"
        # sent first, from the same CPU: it would have been delivered already; the short
        # wait only guards against a reordered queue
        readable, _, _ = select.select([loopback_only], [], [], 0.5)
        assert readable == [], loopback_only.recvfrom(100)


def test_the_drop_rule_lives_in_the_networks_own_chain_and_goes_with_teardown(make_network):
    network = make_network()
    network.ensure_bridge()
    chain = f"PRT-{TEST_BRIDGE}-RAW"
    raw = [line for line in iptables_save().splitlines() if chain in line]
    assert f"-A PREROUTING -j {chain}" in raw
    assert f"-A {chain} -d 127.0.0.0/8 -i {TEST_BRIDGE} -j DROP" in raw

    network.teardown_all()

    assert chain not in iptables_save()


def test_published_ports_still_answer_on_host_loopback(network, serve_in_netns):
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    serve_in_netns(path, 80)
    port = free_host_port()

    network.publish("web", attachment.ip, [PortMapping(host_port=port, container_port=80,
                                                       host_ip="127.0.0.1")])

    assert tcp_fetch("127.0.0.1", port).startswith(b"hello from container")
