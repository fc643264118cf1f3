"""Bridge, namespaces and veths: containers get addresses on the bridge and reach each other."""

from __future__ import annotations

import ipaddress
import os
import subprocess

import pytest
from pyroute2 import IPRoute

from provisioner.components.runtime.net import NetworkError, net_namespace_entry, uses_host_network

from .conftest import TEST_BRIDGE, TEST_GATEWAY, TEST_SUBNET, iptables_save, ping_from, run_in_netns


def test_two_containers_get_distinct_addresses_and_reach_each_other_and_the_gateway(network):
    first = network.attach("web", network.create_netns("web"))
    second = network.attach("db", network.create_netns("db"))

    assert first.ip != second.ip
    for attachment in (first, second):
        assert ipaddress.IPv4Address(attachment.ip) in ipaddress.IPv4Network(TEST_SUBNET)
        assert attachment.gateway == TEST_GATEWAY
        assert attachment.prefixlen == 24
    web_ns = os.path.join(network.netns_dir, "web")
    db_ns = os.path.join(network.netns_dir, "db")
    assert ping_from(web_ns, second.ip).returncode == 0
    assert ping_from(db_ns, first.ip).returncode == 0
    assert ping_from(web_ns, TEST_GATEWAY).returncode == 0


def test_container_side_is_eth0_with_address_route_and_the_bridge_mtu(network):
    path = network.create_netns("web")
    attachment = network.attach("web", path)

    with IPRoute() as ipr:
        bridge = ipr.link("get", index=ipr.link_lookup(ifname=TEST_BRIDGE)[0])[0]
        host_end = ipr.link("get", index=ipr.link_lookup(ifname=attachment.host_veth)[0])[0]
    assert bridge["flags"] & 1  # IFF_UP
    assert len(attachment.host_veth) <= 15
    assert host_end.get("IFLA_MASTER") == bridge["index"]
    addresses = run_in_netns(path, ["/bin/busybox", "ip", "-4", "addr", "show", "eth0"]).stdout
    assert f"inet {attachment.ip}/24" in addresses
    eth0 = run_in_netns(path, ["/bin/busybox", "ip", "link", "show", "eth0"]).stdout
    assert attachment.mac in eth0
    assert f"mtu {bridge.get('IFLA_MTU')} " in eth0
    routes = run_in_netns(path, ["/bin/busybox", "ip", "route"]).stdout
    assert f"default via {TEST_GATEWAY} dev eth0" in routes
    loopback = run_in_netns(path, ["/bin/busybox", "ping", "-c1", "-W2", "127.0.0.1"])
    assert loopback.returncode == 0


def test_bridge_has_the_gateway_forwarding_and_outbound_nat(network):
    network.ensure_bridge()  # a second time: nothing may be duplicated

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=TEST_BRIDGE)[0]
        addresses = [(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.addr("dump", index=index)]
    assert addresses.count((TEST_GATEWAY, 24)) == 1
    with open("/proc/sys/net/ipv4/ip_forward") as ip_forward:
        assert ip_forward.read().strip() == "1"
    saved = iptables_save()
    masquerade = f"-A PRT-{TEST_BRIDGE}-POST -s {TEST_SUBNET} ! -o {TEST_BRIDGE} -j MASQUERADE"
    assert saved.count(masquerade) == 1
    assert saved.count(f"-A POSTROUTING -j PRT-{TEST_BRIDGE}-POST") == 1
    assert saved.count(f"-A FORWARD -j PRT-{TEST_BRIDGE}-FWD") == 1
    forward = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True,
                             check=True).stdout
    rules = [line for line in forward.splitlines() if line.startswith("-A FORWARD")]
    assert rules[0] == f"-A FORWARD -j PRT-{TEST_BRIDGE}-FWD"  # before any DROP of the host's


def test_attach_to_a_missing_namespace_fails_clearly_and_leaves_nothing(network):
    missing = os.path.join(network.netns_dir, "ghost")

    with pytest.raises(NetworkError, match="ghost"):
        network.attach("ghost", missing)

    assert network.ipam.allocations() == {}
    with IPRoute() as ipr:
        assert ipr.link_lookup(ifname=network_veth(network, "ghost")) == []


def test_attach_twice_is_refused_and_keeps_the_first_attachment(network):
    path = network.create_netns("web")
    first = network.attach("web", path)

    with pytest.raises(NetworkError, match="already attached"):
        network.attach("web", path)
    assert network.ipam.allocations() == {"web": first.ip}
    assert ping_from(path, TEST_GATEWAY).returncode == 0


def test_a_bad_container_id_is_refused_before_touching_anything(network):
    with pytest.raises(NetworkError, match="cannot name a network namespace"):
        network.create_netns("../etc")


def test_host_network_mode_needs_no_namespace():
    assert uses_host_network("host")
    assert not uses_host_network("bridge")
    assert net_namespace_entry("host") == {}
    assert net_namespace_entry("bridge", "/run/x/netns/a") == {"net": "/run/x/netns/a"}


def network_veth(network, container_id):
    from provisioner.components.runtime.net.links import host_veth_name

    return host_veth_name(network.bridge, container_id)
