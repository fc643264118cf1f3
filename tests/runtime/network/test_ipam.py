"""Host-local IPAM: no address twice (threads, reloads), never gateway/network/broadcast."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest

from provisioner.components.runtime.net import Network, NetworkError, PortMapping
from provisioner.components.runtime.net.ipam import HostLocalIPAM

from .conftest import TEST_GATEWAY, free_host_port, ping_from, tcp_fetch


def test_a_small_subnet_hands_out_only_host_addresses_and_says_when_full(tmp_path):
    ipam = HostLocalIPAM(str(tmp_path), ipaddress.IPv4Network("10.1.2.0/29"))

    given = {str(ipam.allocate(f"c{i}")) for i in range(5)}

    assert given == {"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}
    with pytest.raises(NetworkError, match="no free address left in 10.1.2.0/29 for container c5"):
        ipam.allocate("c5")
    ipam.release("c2")
    assert str(ipam.allocate("c5")) == "10.1.2.4"


def test_a_container_keeps_its_address_and_release_frees_it(tmp_path):
    ipam = HostLocalIPAM(str(tmp_path), ipaddress.IPv4Network("10.1.2.0/24"))

    first = ipam.allocate("web")

    assert ipam.allocate("web") == first
    ipam.release("web")
    assert ipam.allocations() == {}


def test_freed_addresses_are_not_handed_out_again_at_once(tmp_path):
    ipam = HostLocalIPAM(str(tmp_path), ipaddress.IPv4Network("10.1.2.0/24"))
    first = ipam.allocate("a")
    ipam.release("a")

    assert ipam.allocate("b") != first


def test_threads_and_separate_instances_never_share_an_address(tmp_path):
    subnet = ipaddress.IPv4Network("10.1.0.0/24")

    def allocate(i: int) -> str:  # a fresh instance per call: as separate daemons would
        return str(HostLocalIPAM(str(tmp_path), subnet).allocate(f"c{i}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        given = list(pool.map(allocate, range(200)))

    assert len(set(given)) == 200
    reloaded = HostLocalIPAM(str(tmp_path), subnet)
    assert reloaded.allocations() == {f"c{i}": given[i] for i in range(200)}


def test_concurrent_attaches_get_distinct_working_addresses(network):
    def attach(i: int) -> str:
        return network.attach(f"c{i}", network.create_netns(f"c{i}")).ip

    with ThreadPoolExecutor(max_workers=8) as pool:
        addresses = list(pool.map(attach, range(8)))

    assert len(set(addresses)) == 8
    assert TEST_GATEWAY not in addresses
    assert ping_from(f"{network.netns_dir}/c0", addresses[7]).returncode == 0


def test_a_restarted_daemon_never_reuses_a_live_address_and_readopts_endpoints(
    network, make_network, serve_in_netns
):
    web = network.attach("web", web_ns := network.create_netns("web"))
    db = network.attach("db", network.create_netns("db"))
    serve_in_netns(web_ns, 80)
    port = free_host_port()
    network.publish("web", web.ip, [PortMapping(port, 80)])
    network.firewall.remove_dnat("web")  # as if someone flushed our rules while the daemon was down

    restarted: Network = Network.load(bridge=network.bridge, subnet=str(network.subnet),
                                      state_dir=network.directory.rsplit("/", 1)[0],
                                      netns_dir=network.netns_dir)

    endpoints = restarted.endpoints()
    assert {cid: e.attachment.ip for cid, e in endpoints.items()} == {"web": web.ip, "db": db.ip}
    assert all(e.netns_alive for e in endpoints.values())
    assert tcp_fetch("127.0.0.1", port).startswith(b"hello from container")
    cache = restarted.attach("cache", restarted.create_netns("cache"))
    assert cache.ip not in {web.ip, db.ip}
    restarted.release("db")
    assert restarted.ipam.allocations() == {"web": web.ip, "cache": cache.ip}
