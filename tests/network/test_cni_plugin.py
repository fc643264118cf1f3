"""This project's CNI plugins (provisioner-bridge, -host-local, -portmap, -loopback) run by the
runtime for pod sandboxes: addresses from the pod CIDR, pod-to-pod and hostPort traffic, CHECK, DEL
leaving nothing behind, and IPAM delegation to the reference host-local plugin as the spec allows."""

from __future__ import annotations

import os
import subprocess

import pytest

from provisioner.components.cni.bridge import host_veth
from provisioner.components.cni.protocol import Invocation
from provisioner.components.runtime.client import RuntimeAPIError
from provisioner.components.runtime.net.cni import CniError, CniPlugins, CniSettings
from tests.runtime.daemon.test_containers import free_port

from .conftest import OWN_BRIDGE, OWN_SUBNET, bridge_ports, wait_for
from .test_cni_runtime import fetch, host_address, serve_http_in

PREFIX = OWN_SUBNET.rsplit(".", 1)[0] + "."


def own_network(ipam_dir: str, ipam_type: str = "provisioner-host-local") -> dict:
    return {"cniVersion": "1.0.0", "name": "owntest", "plugins": [
        {"type": "provisioner-bridge", "bridge": OWN_BRIDGE, "isGateway": True, "ipMasq": True,
         "ipam": {"type": ipam_type, "dataDir": ipam_dir, "ranges": [[{"subnet": OWN_SUBNET}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "provisioner-portmap", "capabilities": {"portMappings": True}},
        {"type": "provisioner-loopback"}]}


def nat_rules() -> str:
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("ipam_type", ["provisioner-host-local", "host-local"])
def test_own_plugins_network_pods_publish_host_ports_and_clean_up(cni_daemon, pods, tmp_path,
                                                                  ipam_type):
    ipam_dir = str(tmp_path / "ipam")
    cni_daemon.use_network(own_network(ipam_dir, ipam_type))
    host_port = free_port()
    server = cni_daemon.client.create_pod("server", namespace="own", uid="uid-s", ports=[
        {"host_port": host_port, "container_port": 8080, "protocol": "tcp"}])
    pods.append(server["id"])
    asker = cni_daemon.client.create_pod("asker", namespace="own", uid="uid-a")
    pods.append(asker["id"])
    assert server["ip"].startswith(PREFIX) and asker["ip"].startswith(PREFIX)
    assert server["ip"] != asker["ip"] and server["ip"] != PREFIX + "1"   # .1: the gateway
    assert os.listdir(os.path.join(ipam_dir, "owntest"))
    assert len(bridge_ports(OWN_BRIDGE)) == 2

    serve_http_in(cni_daemon.client, server["id"], "own-plugin")
    assert wait_for(lambda: fetch(f"http://{server['ip']}:8080/"), what="the pod IP") \
        == "own-plugin\n"
    assert wait_for(lambda: fetch(f"http://{host_address()}:{host_port}/"),
                    what="the hostPort") == "own-plugin\n"
    client = cni_daemon.client.create("busybox", pod=asker["id"], name=f"ask-{ipam_type}",
                                      cmd=["sleep", "1000"])
    cni_daemon.client.start(client)

    def ask(url: str) -> bytes | None:
        code, output = cni_daemon.client.exec_collect(client, ["wget", "-qO-", url])
        return output if code == 0 else None
    assert wait_for(lambda: ask(f"http://{server['ip']}:8080/"), what="pod to pod") \
        == b"own-plugin\n"
    code, lo = cni_daemon.client.exec_collect(client, ["ip", "-o", "addr", "show", "lo"])
    assert code == 0 and b"127.0.0.1/8" in lo

    # CHECK (the runtime's CNI client, from the cached result) passes while all is in place
    plugins = CniPlugins(CniSettings(cni_daemon.conf_dir, [cni_daemon.bin_dir, "/usr/lib/cni"],
                                     cni_daemon.cache_dir))
    plugins.check(server["id"])

    chain = next(line.split()[0][1:] for line in nat_rules().splitlines()
                 if line.startswith(":PROV-HP-"))
    cni_daemon.client.remove_pod(server["id"])
    cni_daemon.client.remove_pod(asker["id"])
    assert bridge_ports(OWN_BRIDGE) == []
    assert [name for name in os.listdir(os.path.join(ipam_dir, "owntest"))
            if name.startswith(PREFIX)] == []
    rules = nat_rules()
    assert chain not in rules and server["ip"] not in rules
    assert fetch(f"http://{host_address()}:{host_port}/") is None


def test_check_reports_a_missing_interface(cni_daemon, pods, tmp_path):
    cni_daemon.use_network(own_network(str(tmp_path / "ipam")))
    pod = cni_daemon.client.create_pod("checked", namespace="own", uid="uid-c")
    pods.append(pod["id"])
    plugins = CniPlugins(CniSettings(cni_daemon.conf_dir, [cni_daemon.bin_dir],
                                     cni_daemon.cache_dir))
    plugins.check(pod["id"])
    veth = host_veth(Invocation("ADD", pod["id"], "", "eth0", {}, [], {"name": "owntest"}, b""))
    subprocess.run(["ip", "link", "del", veth], check=True)
    with pytest.raises(CniError) as failure:
        plugins.check(pod["id"])
    assert "eth0" in str(failure.value) and "expected" in str(failure.value)


def test_version_and_a_configuration_error_come_back_as_the_spec_says(cni_daemon, pods):
    plugins = CniPlugins(CniSettings(cni_daemon.conf_dir, [cni_daemon.bin_dir],
                                     cni_daemon.cache_dir))
    answer = plugins.version("provisioner-bridge")
    assert "1.0.0" in answer["supportedVersions"]
    cni_daemon.use_network({"cniVersion": "1.0.0", "name": "noipam", "plugins": [
        {"type": "provisioner-bridge", "bridge": OWN_BRIDGE}]})
    with pytest.raises(RuntimeAPIError) as failure:
        pods.append(cni_daemon.client.create_pod("noipam", namespace="own")["id"])
    assert "provisioner-bridge needs ipam.type" in str(failure.value)
    assert cni_daemon.sandbox_netns() == []
