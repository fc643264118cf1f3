"""Published ports: reachable on the host's own addresses, loopback included; conflicts refused."""

from __future__ import annotations

import socket

import pytest

from provisioner.components.runtime.net import PortInUse, PortMapping

from .conftest import free_host_port, host_address, iptables_save, run_in_netns, tcp_fetch


@pytest.fixture
def web(network, serve_in_netns):
    """A container 'web' with a TCP server on port 80 inside its namespace."""
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    serve_in_netns(path, 80)
    return path, attachment


def test_published_tcp_port_answers_on_the_host_address_and_on_loopback(network, web):
    _, attachment = web
    port = free_host_port()

    network.publish("web", attachment.ip, [PortMapping(host_port=port, container_port=80)])

    assert tcp_fetch(host_address(), port).startswith(b"hello from container")
    assert tcp_fetch("127.0.0.1", port).startswith(b"hello from container")


def test_containers_reach_a_published_port_through_the_host_hairpin_included(network, web):
    path, attachment = web
    port = free_host_port()
    network.publish("web", attachment.ip, [PortMapping(host_port=port, container_port=80)])
    neighbour = network.create_netns("neighbour")
    network.attach("neighbour", neighbour)

    for client in (path, neighbour):
        fetched = run_in_netns(client, ["/bin/busybox", "nc", "-w", "3",
                                        attachment.gateway, str(port)])
        assert fetched.stdout.startswith("hello from container"), (client, fetched.stderr)


def test_published_udp_port_answers_on_loopback(network, serve_in_netns):
    path = network.create_netns("dns")
    attachment = network.attach("dns", path)
    serve_in_netns(path, 53, proto="udp")
    port = free_host_port("udp")

    network.publish("dns", attachment.ip, [PortMapping(port, 53, protocol="udp")])

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(b"ping", ("127.0.0.1", port))
        assert client.recvfrom(100)[0] == b"udp reply to ping"


def test_release_forgets_tracked_connections_so_a_republished_udp_port_follows(
    network, serve_in_netns
):
    port = free_host_port("udp")
    first = network.attach("dns1", first_ns := network.create_netns("dns1"))
    serve_in_netns(first_ns, 53, proto="udp")
    network.publish("dns1", first.ip, [PortMapping(port, 53, protocol="udp")])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.bind(("127.0.0.1", 0))  # one source port throughout: one conntrack entry
        client.sendto(b"one", ("127.0.0.1", port))
        assert client.recvfrom(100)[0] == b"udp reply to one"

        network.release("dns1")
        second = network.attach("dns2", second_ns := network.create_netns("dns2"))
        serve_in_netns(second_ns, 53, proto="udp")
        network.publish("dns2", second.ip, [PortMapping(port, 53, protocol="udp")])

        client.sendto(b"two", ("127.0.0.1", port))
        assert client.recvfrom(100)[0] == b"udp reply to two"
    assert first.ip != second.ip


def test_a_port_a_host_process_listens_on_is_refused_and_nothing_is_added(network, web):
    _, attachment = web
    before = iptables_save()
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        free = free_host_port()

        with pytest.raises(PortInUse, match=rf"^port {taken}/tcp is already in use on the host"):
            network.publish("web", attachment.ip, [PortMapping(free, 80), PortMapping(taken, 80)])

    assert iptables_save().count("DNAT --to-destination") == before.count("DNAT --to-destination")
    assert network.endpoints()["web"].ports == []


def test_a_port_another_container_publishes_is_refused(network, web, serve_in_netns):
    _, attachment = web
    port = free_host_port()
    network.publish("web", attachment.ip, [PortMapping(port, 80)])
    other = network.attach("other", network.create_netns("other"))

    expected = rf"port {port}/tcp is already in use on the host: container web"
    with pytest.raises(PortInUse, match=expected):
        network.publish("other", other.ip, [PortMapping(port, 8080, host_ip="127.0.0.1")])

    assert "container=other" not in iptables_save()
    assert tcp_fetch("127.0.0.1", port).startswith(b"hello from container")


def test_the_same_port_number_on_tcp_and_udp_is_fine(network, web):
    _, attachment = web
    port = free_host_port()

    network.publish("web", attachment.ip, [PortMapping(port, 80), PortMapping(port, 80, "udp")])

    assert [p.protocol for p in network.endpoints()["web"].ports] == ["tcp", "udp"]
