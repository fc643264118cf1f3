"""Hairpin traffic through kube-proxy: a pod behind the node's bridge reaches itself through its
own Service's ClusterIP. The node masquerades that connection (the KUBE-SEP chain marks traffic
from the endpoint itself), so the pod sees it come from the node's bridge address and its reply
returns through the node to be un-NATed; without that the reply would stay inside the pod.

kube-proxy runs in a node namespace of its own (test_kube_proxy's ProxyNode), against the session's
API server; the pod is a namespace on a veth whose node end is a port of a bridge, hairpin on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import SESSION, wait_for
from .netns import WHO, Netns
from .test_kube_proxy import NODE, ProxyNode, _get, service

BRIDGE_IP = "10.249.0.1"
# Inside ProxyNode's clusterCIDR (10.250.0.0/24), so only the endpoint's own hairpin rule can mark
# this traffic for masquerade (traffic from outside the cluster CIDR is marked anyway).
POD_IP = "10.250.0.77"



@pytest.fixture(scope="module")
def hairpin_node(api, tmp_path_factory):
    for name in (f"kpt{SESSION}", f"kpc{SESSION}", f"kph{SESSION}"):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    node = ProxyNode(api, tmp_path_factory.mktemp("proxy-hairpin"))
    pod = None
    try:
        pod = Netns(f"kph{SESSION}")
        node.ns.ip("link", "add", "cbr0", "type", "bridge")
        node.ns.ip("addr", "add", f"{BRIDGE_IP}/24", "dev", "cbr0")
        node.ns.ip("link", "set", "cbr0", "up")
        subprocess.run(["ip", "link", "add", "vethpod", "netns", node.ns.name, "type", "veth",
                        "peer", "name", "eth0", "netns", pod.name], check=True)
        node.ns.ip("link", "set", "vethpod", "master", "cbr0")
        node.ns.ip("link", "set", "vethpod", "type", "bridge_slave", "hairpin", "on")
        node.ns.ip("link", "set", "vethpod", "up")
        node.ns.ip("route", "add", f"{POD_IP}/32", "dev", "cbr0")
        pod.ip("addr", "add", f"{POD_IP}/32", "dev", "eth0")
        pod.ip("link", "set", "eth0", "up")
        pod.ip("route", "add", BRIDGE_IP, "dev", "eth0")
        pod.ip("route", "add", "default", "via", BRIDGE_IP)
        node.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        server = pod.popen([sys.executable, "-c", WHO, f"{POD_IP}:8080"], stdout=subprocess.PIPE,
                           text=True)
        assert server.stdout.readline().strip() == "ready"
        yield node, pod
    finally:
        if pod is not None:
            pod.close()
        node.close()


def test_a_pod_reaches_itself_through_its_service_masqueraded_by_the_node(api, hairpin_node):
    node, pod = hairpin_node
    svc = service(api, "hairpin", [{"addresses": [POD_IP], "nodeName": NODE,
                                    "conditions": {"ready": True, "serving": True,
                                                   "terminating": False}}])
    ip = svc["spec"]["clusterIP"]
    # the rules are in place once the node itself reaches the endpoint
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering from the node")
    status, seen = wait_for(lambda: (found := pod.call(_get, f"http://{ip}:80/"))[0] == 200
                            and found, what="the pod reaching itself through its ClusterIP")
    assert seen == BRIDGE_IP                        # masqueraded: not the pod's own address
    marks = [line for line in node.iptables_save().splitlines()
             if line.startswith("-A KUBE-SEP-") and f"-s {POD_IP}/32" in line]
    assert marks and all(line.endswith("-j KUBE-MARK-MASQ") for line in marks)
