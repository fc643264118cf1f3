"""The runtime's pod sandboxes get their network from CNI plugins as the CNI 1.0 specification says:
shown with Debian's reference plugins (bridge, host-local, portmap), so the runtime follows the
specification and not only this project's own plugin."""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request

import pytest

from provisioner.components.runtime.client import RuntimeAPIError
from tests.runtime.daemon.test_containers import free_port

from .conftest import REFERENCE_BRIDGE, REFERENCE_SUBNET, bridge_ports, wait_for

PREFIX = REFERENCE_SUBNET.rsplit(".", 1)[0] + "."


def reference_network(ipam_dir: str, subnet: str = REFERENCE_SUBNET) -> dict:
    return {"cniVersion": "1.0.0", "name": "reftest", "plugins": [
        {"type": "bridge", "bridge": REFERENCE_BRIDGE, "isGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": ipam_dir, "ranges": [[{"subnet": subnet}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}]}


def host_address() -> str:
    """This host's address on its default route (what a hostPort is published on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))     # no packet is sent: only the route is looked up
        return probe.getsockname()[0]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def serve_http_in(client, pod_id: str, text: str) -> str:
    container = client.create("busybox", pod=pod_id, name=f"web-{pod_id[:8]}", cmd=[
        "sh", "-c", f"mkdir /www && echo {text} > /www/index.html && exec httpd -f -p 8080 -h /www"])
    client.start(container)
    return container


def test_reference_plugins_network_a_pod_and_del_uses_the_cached_result(cni_daemon, pods,
                                                                         tmp_path):
    ipam_dir = str(tmp_path / "ipam")
    cni_daemon.use_network(reference_network(ipam_dir))
    host_port = free_port()
    pod = cni_daemon.client.create_pod("web", namespace="cni", uid="uid-ref", ports=[
        {"host_port": host_port, "container_port": 8080, "protocol": "tcp"}])
    pods.append(pod["id"])
    assert pod["ip"].startswith(PREFIX)
    # host-local recorded the address under the owner the runtime named (container id, ifname)
    with open(os.path.join(ipam_dir, "reftest", pod["ip"])) as record:
        assert record.read().split()[0] == pod["id"]
    cache = os.path.join(cni_daemon.cache_dir, "results", f"reftest-{pod['id']}-eth0")
    with open(cache) as source:
        cached = json.load(source)
    assert cached["result"]["ips"][0]["address"].startswith(pod["ip"] + "/")
    assert json.loads(base64.b64decode(cached["config"]))["name"] == "reftest"
    assert ["K8S_POD_NAME", "web"] in cached["cniArgs"]
    assert len(bridge_ports(REFERENCE_BRIDGE)) == 1
    assert len(cni_daemon.sandbox_netns()) == 1

    serve_http_in(cni_daemon.client, pod["id"], "via-cni")
    assert wait_for(lambda: fetch(f"http://{pod['ip']}:8080/"), what="httpd on the pod IP") \
        == "via-cni\n"
    # hostPort through the portmap plugin (the portMappings capability from the runtime)
    assert wait_for(lambda: fetch(f"http://{host_address()}:{host_port}/"),
                    what="the hostPort") == "via-cni\n"

    # The configuration may change or vanish before DEL: the cached one is used.
    cni_daemon.use_network(reference_network(str(tmp_path / "elsewhere"), "10.193.0.0/24"))
    cni_daemon.client.remove_pod(pod["id"])
    assert not os.path.exists(cache)
    assert not os.path.exists(os.path.join(ipam_dir, "reftest", pod["ip"]))
    assert bridge_ports(REFERENCE_BRIDGE) == []
    assert cni_daemon.sandbox_netns() == []
    assert fetch(f"http://{host_address()}:{host_port}/") is None


def test_two_pods_on_one_bridge_reach_each_other(cni_daemon, pods, tmp_path):
    cni_daemon.use_network(reference_network(str(tmp_path / "ipam")))
    first = cni_daemon.client.create_pod("one", namespace="cni", uid="uid-1")
    pods.append(first["id"])
    second = cni_daemon.client.create_pod("two", namespace="cni", uid="uid-2")
    pods.append(second["id"])
    assert first["ip"] != second["ip"]
    serve_http_in(cni_daemon.client, first["id"], "from-one")
    client = cni_daemon.client.create("busybox", pod=second["id"], name="asker",
                                      cmd=["sleep", "1000"])
    cni_daemon.client.start(client)

    def ask() -> bytes | None:
        code, output = cni_daemon.client.exec_collect(
            client, ["wget", "-qO-", f"http://{first['ip']}:8080/"])
        return output if code == 0 else None
    assert wait_for(ask, what="pod-to-pod over the CNI bridge") == b"from-one\n"


@pytest.mark.parametrize("plugin, expected", [
    ({"type": "no-such-plugin"},
     "failed to find CNI plugin 'no-such-plugin'"),
    ({"type": "bridge", "bridge": REFERENCE_BRIDGE,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/33"}]]}},
     "invalid CIDR address: 10.0.0.0/33"),          # the plugin's own message
])
def test_a_failing_plugin_fails_the_sandbox_with_its_message_and_leaves_nothing(
        cni_daemon, pods, plugin, expected):
    cni_daemon.use_network({"cniVersion": "1.0.0", "name": "broken", "plugins": [plugin]})
    with pytest.raises(RuntimeAPIError) as failure:
        pods.append(cni_daemon.client.create_pod("bad", namespace="cni")["id"])
    assert expected in str(failure.value)
    assert all(p["name"] != "bad" for p in cni_daemon.client.pods())
    assert cni_daemon.sandbox_netns() == []         # the netns made for it is gone again


def test_no_configuration_is_a_clear_error(cni_daemon, pods):
    for name in os.listdir(cni_daemon.conf_dir):
        os.unlink(os.path.join(cni_daemon.conf_dir, name))
    with pytest.raises(RuntimeAPIError) as failure:
        pods.append(cni_daemon.client.create_pod("early", namespace="cni")["id"])
    assert f"no CNI network configuration in {cni_daemon.conf_dir}" in str(failure.value)
    assert cni_daemon.sandbox_netns() == []
