"""release and teardown: idempotent, crash-safe, and nothing left behind."""

from __future__ import annotations

import ctypes
import os

from pyroute2 import IPRoute

from provisioner.components.runtime.net import PortMapping
from provisioner.components.runtime.net.links import host_veth_name

from .conftest import TEST_BRIDGE, free_host_port, iptables_save


def _link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def test_release_removes_veth_address_rules_and_netns_and_can_be_repeated(network):
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    network.publish("web", attachment.ip, [PortMapping(free_host_port(), 80)])
    assert "container=web" in iptables_save()

    network.release("web")
    network.release("web")

    assert not _link_exists(attachment.host_veth)
    assert "container=web" not in iptables_save()
    assert not os.path.exists(path)
    assert network.ipam.allocations() == {}
    assert network.endpoints() == {}


def test_release_after_the_namespace_vanished_cleans_the_rest(network):
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    network.publish("web", attachment.ip, [PortMapping(free_host_port(), 80)])
    # As after a reboot or a crash: the handle is gone, taking the namespace and eth0 with it.
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.umount2(path.encode(), 2) == 0
    os.unlink(path)

    network.release("web")

    assert "container=web" not in iptables_save()
    assert network.ipam.allocations() == {}
    assert not _link_exists(attachment.host_veth)


def test_release_of_something_never_seen_is_harmless(network):
    network.release("never-created")

    assert network.endpoints() == {}


def test_release_without_saved_state_still_finds_the_veth_and_rules(network):
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    network.publish("web", attachment.ip, [PortMapping(free_host_port(), 80)])
    os.unlink(os.path.join(network.endpoints_dir, "web.json"))  # lost in a crash

    network.release("web")

    assert not _link_exists(attachment.host_veth)
    assert "container=web" not in iptables_save()
    assert not os.path.exists(path)
    assert network.ipam.allocations() == {}


def test_teardown_all_removes_bridge_chains_namespaces_and_state(make_network):
    network = make_network()
    network.ensure_bridge()
    path = network.create_netns("web")
    attachment = network.attach("web", path)
    network.publish("web", attachment.ip, [PortMapping(free_host_port(), 80)])

    network.teardown_all()

    assert not _link_exists(TEST_BRIDGE)
    assert not _link_exists(host_veth_name(TEST_BRIDGE, "web"))
    assert f"PRT-{TEST_BRIDGE}-" not in iptables_save()
    assert not os.path.exists(network.netns_dir)
    assert not os.path.exists(network.directory)
