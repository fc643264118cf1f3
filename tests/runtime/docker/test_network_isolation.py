"""User-defined networks are kept apart as Docker keeps them: real traffic between busybox
containers shows members of one network reaching each other by name and alias, and nothing of
another network nor of the plain bridge reaching them, until a container joins both; published
ports stay reachable through the host."""

from __future__ import annotations

import contextlib
import subprocess

import docker
import pytest

from provisioner.components.runtime.net.firewall import BridgeIsolation
from provisioner.components.runtime.net.links import host_veth_name

from .conftest import BRIDGE, wait_until

SERVE = "mkdir /www; echo {word} > /www/index.html; exec httpd -f -p 80 -h /www"
NAMES = ("iso-web-a", "iso-web-b", "iso-plain", "iso-client")


def _fetch(container, url: str) -> tuple[int, bytes]:
    # a time limit by `timeout`: wget -T crashes in Debian's busybox
    result = container.exec_run(["timeout", "3", "wget", "-qO-", url])
    return result.exit_code, result.output


def _reaches(container, url: str, word: str) -> bool:
    return _fetch(container, url) == (0, f"{word}\n".encode())


def _ip(container, network: str = "") -> str:
    container.reload()
    settings = container.attrs["NetworkSettings"]
    return settings["Networks"][network]["IPAddress"] if network else settings["IPAddress"]


@pytest.fixture
def two_networks(client):
    networks = [client.networks.create(name) for name in ("iso-a", "iso-b")]
    yield networks
    for name in NAMES:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)
    for network in networks:
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def _serve(client, name: str, word: str, network: str | None, **options):
    extra = {"network": network, "networking_config": {network: client.api.create_endpoint_config(
        aliases=[f"alias-{word}"])}} if network else {}
    return client.containers.run("busybox", ["sh", "-c", SERVE.format(word=word)], name=name,
                                 detach=True, **extra, **options)


def test_networks_are_isolated_from_each_other_and_from_the_bridge(engine, client,
                                                                  two_networks):
    net_a, net_b = two_networks
    web_a = _serve(client, "iso-web-a", "a", "iso-a")
    web_b = _serve(client, "iso-web-b", "b", "iso-b", ports={"80/tcp": None})
    plain = _serve(client, "iso-plain", "plain", None)
    member = client.containers.run("busybox", ["sleep", "300"], name="iso-client", detach=True,
                                   network="iso-a")
    ip_b, ip_plain = _ip(web_b, "iso-b"), _ip(plain)

    # every server answers where it may be reached, so the refusals below are isolation
    wait_until(lambda: _reaches(member, "http://iso-web-a/", "a"), what="iso-web-a by name")
    assert _reaches(member, "http://alias-a/", "a")
    web_b.reload()
    host_port = web_b.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    gateway = ".".join(ip_b.split(".")[:3]) + ".1"
    # a published port of the other network's container is reached through the host
    wait_until(lambda: _reaches(member, f"http://{gateway}:{host_port}/", "b"),
               what="the published port of iso-web-b through the host")
    # the plain bridge is as before for containers on no user-defined network
    outsider = client.containers.run("busybox", ["sleep", "300"], name="iso-outsider",
                                     detach=True)
    try:
        wait_until(lambda: _reaches(outsider, f"http://{ip_plain}/", "plain"),
                   what="the plain bridge container from another plain one")
    finally:
        outsider.remove(force=True)

    # another network and the plain bridge: not by address, and no name either
    assert _fetch(member, f"http://{ip_b}/")[0] != 0
    assert _fetch(member, f"http://{ip_plain}/")[0] != 0
    assert _fetch(member, "http://iso-web-b/")[0] != 0
    # nor the other way
    assert _fetch(plain, f"http://{_ip(web_a, 'iso-a')}/")[0] != 0
    assert _fetch(web_b, f"http://{_ip(member, 'iso-a')}/")[0] != 0

    # joining the other network opens it (by name too); leaving closes it again
    net_b.connect(member)
    wait_until(lambda: _reaches(member, "http://iso-web-b/", "b"), what="iso-web-b after join")
    assert _reaches(member, "http://iso-web-a/", "a")
    net_b.disconnect(member)
    assert _fetch(member, f"http://{ip_b}/")[0] != 0

    # the rules name the members' bridge ports and go with the containers
    ports = {host_veth_name(BRIDGE, c.id) for c in (web_a, web_b, member)}
    rules = "\n".join(BridgeIsolation(BRIDGE).installed_rules())
    assert all(port in rules for port in ports)
    for container in (web_a, web_b, plain, member):
        container.remove(force=True)
    rules = "\n".join(BridgeIsolation(BRIDGE).installed_rules())
    assert not any(port in rules for port in ports)


def test_a_restarted_daemon_puts_lost_isolation_rules_back(engine, client, two_networks):
    members = [client.containers.run("busybox", ["sleep", "300"], name=name, detach=True,
                                     network=network)
               for name, network in (("iso-web-a", "iso-a"), ("iso-web-b", "iso-b"))]
    ports = {host_veth_name(BRIDGE, c.id) for c in members}
    isolation = BridgeIsolation(BRIDGE)
    assert ports <= {word for rule in isolation.installed_rules() for word in rule.split()}
    subprocess.run(["ebtables-nft", "-F", isolation.chain], check=True)   # a flushed firewall
    assert isolation.installed_rules() == []
    engine.stop()
    engine.start()
    assert ports <= {word for rule in isolation.installed_rules() for word in rule.split()}
