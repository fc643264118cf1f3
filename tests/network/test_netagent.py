"""The network agent as real processes on two "nodes" (network namespaces joined by one link), each
with a pod (a namespace on a veth): pods reach pods on the other node without NAT, through host-gw
routes or a VXLAN overlay; pod traffic to the outside is masqueraded; stopping the agents leaves the
routes in place; auto mode picks host-gw on a shared link and VXLAN otherwise."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioner.components.netagent.plan import peer_routes

from .conftest import SESSION, kubectl, wait_for
from .netns import WHO, Forwarder, Netns

AGENT = str(Path(sys.prefix) / "bin" / "provisioner-netagent")
NODES = {"a": ("192.168.77.1", "10.244.1.0/24"), "b": ("192.168.77.2", "10.244.2.0/24")}

FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"


def pod_ip(key: str) -> str:
    return NODES[key][1].replace("0/24", "10")


class TwoNodes:
    def __init__(self, api, base: Path):
        self.api = api
        self.base = base
        self.parts: list = []
        self.nodes: dict[str, Netns] = {}
        self.pods: dict[str, Netns] = {}
        self.agents: list[subprocess.Popen] = []
        try:
            self._set_up()
        except BaseException:
            self.close()
            raise

    def _set_up(self) -> None:
        for key in NODES:
            self.nodes[key] = node = Netns(f"nag{key}{SESSION}")
            self.pods[key] = Netns(f"nap{key}{SESSION}")
            self.parts += [node, self.pods[key]]
            node.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        subprocess.run(["ip", "link", "add", "link0", "netns", self.nodes["a"].name, "type",
                        "veth", "peer", "name", "link0", "netns", self.nodes["b"].name],
                       check=True)
        for key, (address, cidr) in NODES.items():
            node, pod = self.nodes[key], self.pods[key]
            node.ip("addr", "add", f"{address}/24", "dev", "link0")
            node.ip("link", "set", "link0", "up")
            subprocess.run(["ip", "link", "add", "pod0", "netns", node.name, "type", "veth",
                            "peer", "name", "eth0", "netns", pod.name], check=True)
            gateway = cidr.replace("0/24", "1")
            node.ip("addr", "add", f"{gateway}/24", "dev", "pod0")
            node.ip("link", "set", "pod0", "up")
            pod.ip("addr", "add", f"{pod_ip(key)}/24", "dev", "eth0")
            pod.ip("link", "set", "eth0", "up")
            pod.ip("route", "add", "default", "via", gateway)
            self.parts.append(Forwarder(node, 6443, self.api.api_port))
            server = pod.popen([sys.executable, "-c", WHO, f"{pod_ip(key)}:8080"], stdout=subprocess.PIPE,
                               text=True)
            assert server.stdout.readline().strip() == "ready"
        config = yaml.safe_load(self.api.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:6443"
        self.kubeconfig = self.base / "netagent.conf"
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)
        for key, (address, cidr) in NODES.items():
            name = f"na-{key}-{SESSION}"
            kubectl(self.api, "apply", "-f", "-", stdin=json.dumps({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}))
            kubectl(self.api, "patch", "node", name, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"addresses": [
                        {"type": "InternalIP", "address": address},
                        {"type": "Hostname", "address": name}]}}))

    def start_agents(self, mode: str) -> None:
        for key in NODES:
            log = open(self.base / f"agent-{key}-{mode}.log", "w")        # noqa: SIM115
            self.agents.append(self.nodes[key].popen(
                [AGENT, "--kubeconfig", str(self.kubeconfig), "--node-name", f"na-{key}-{SESSION}",
                 "--cluster-cidr", "10.244.0.0/16", "--mode", mode,
                 "--healthz-bind-address", "127.0.0.1:9099",
                 "--cni-conf-dir", str(self.base / f"net.d-{key}")], stdout=log, stderr=log))

    def stop_agents(self) -> None:
        for agent in self.agents:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=30) == 0
        self.agents.clear()

    def forget_routes(self) -> None:
        for node in self.nodes.values():
            node.run(["ip", "route", "flush", "proto", "177"])
            node.run(["ip", "link", "del", "provx0"])

    def fetch(self, source: str, target: str) -> str | None:
        done = self.pods[source].run([sys.executable, "-c", FETCH, f"http://{pod_ip(target)}:8080/"])
        return done.stdout.strip() if done.returncode == 0 else None

    def routes(self, key: str) -> str:
        return self.nodes[key].run(["ip", "route", "show", "proto", "177"]).stdout

    def close(self) -> None:
        for agent in self.agents:
            agent.kill()
        for part in reversed(self.parts):
            part.close()


@pytest.fixture(scope="module")
def two_nodes(api, tmp_path_factory):
    nodes = TwoNodes(api, tmp_path_factory.mktemp("netagent"))
    yield nodes
    nodes.close()


@pytest.mark.parametrize("mode, route", [
    ("host-gw", "10.244.2.0/24 via 192.168.77.2 dev link0"),
    ("vxlan", "10.244.2.0/24 via 10.244.2.0 dev provx0"),
])
def test_pods_reach_pods_on_the_other_node_without_nat_and_routes_outlive_the_agent(
        two_nodes, mode, route):
    two_nodes.forget_routes()
    assert two_nodes.fetch("a", "b") is None                    # no route yet
    two_nodes.start_agents(mode)
    try:
        # the server on node b sees pod a's own address: no NAT between pods
        assert wait_for(lambda: two_nodes.fetch("a", "b"), timeout=30,
                        what=f"pod a -> pod b over {mode}") == pod_ip("a")
        assert two_nodes.fetch("b", "a") == pod_ip("b")
        assert route in two_nodes.routes("a")
    finally:
        two_nodes.stop_agents()
    assert route in two_nodes.routes("a")                       # kept after the agent stops
    assert two_nodes.fetch("a", "b") == pod_ip("a")
    nat = two_nodes.nodes["a"].run(["iptables-save", "-t", "nat"]).stdout
    assert "-A PROVISIONER-NETAGENT-MASQ -s 10.244.0.0/16 -j MASQUERADE" in nat
    assert "-A PROVISIONER-NETAGENT-MASQ -d 10.244.0.0/16 -j RETURN" in nat
    # the node's CNI configuration: this project's plugins with the node's podCIDR
    conflist = json.loads((two_nodes.base / "net.d-b" / "10-provisioner.conflist").read_text())
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": NODES["b"][1]}]]
    assert [p["type"] for p in conflist["plugins"]] == ["provisioner-bridge", "provisioner-portmap"]
    # over VXLAN the pods get the overlay's MTU (1500 - 50 on this link)
    assert conflist["plugins"][0].get("mtu") == (1450 if mode == "vxlan" else None)


def node(name: str, address: str, cidr: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": address}]}}


def test_auto_mode_uses_host_gw_on_a_shared_link_and_vxlan_elsewhere():
    nodes = [node("me", "192.168.1.5", "10.244.0.0/24"),
             node("same-link", "192.168.1.6", "10.244.1.0/24"),
             node("elsewhere", "172.16.9.9", "10.244.2.0/24"),
             node("no-cidr-yet", "192.168.1.7", "")]
    planned = {r.node: r.mode for r in peer_routes(nodes, "me", ["192.168.1.5/24"])}
    assert planned == {"same-link": "host-gw", "elsewhere": "vxlan"}


def test_bad_flags_are_one_line():
    done = subprocess.run([AGENT, "--kubeconfig", "/dev/null", "--cluster-cidr", "10.0.0.0/33"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "--cluster-cidr '10.0.0.0/33'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def apply(api, *objects: dict) -> None:
    kubectl(api, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": list(objects)}))


def api_pod(api, namespace: str, name: str, node_key: str, labels: dict) -> None:
    apply(api, {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"nodeName": f"na-{node_key}-{SESSION}", "containers": [
                    {"name": "c", "image": "busybox",
                     "ports": [{"name": "http", "containerPort": 8080}]}]}})
    kubectl(api, "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": "Running", "podIP": pod_ip(node_key),
                                         "podIPs": [{"ip": pod_ip(node_key)}]}}))


def policy(namespace: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_network_policies_isolate_pods_and_allow_what_they_name(api, two_nodes):
    client_ns, server_ns = f"np-client-{SESSION}", f"np-server-{SESSION}"
    apply(api, {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": client_ns, "labels": {"team": "client"}}},
          {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": server_ns, "labels": {"team": "server"}}})
    api_pod(api, client_ns, "client", "a", {"app": "client"})
    api_pod(api, server_ns, "server", "b", {"app": "server"})
    two_nodes.forget_routes()
    two_nodes.start_agents("host-gw")
    blocked = lambda: two_nodes.fetch("a", "b") is None        # noqa: E731
    try:
        wait_for(lambda: two_nodes.fetch("a", "b"), timeout=30, what="open network")
        apply(api, policy(server_ns, "default-deny", {"podSelector": {},
                                                      "policyTypes": ["Ingress"]}))
        wait_for(blocked, timeout=30, what="default deny")
        assert two_nodes.fetch("b", "a") == pod_ip("b")           # only b's ingress isolated
        allow_client = {"podSelector": {"matchLabels": {"app": "server"}}, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"team": "client"}},
                      "podSelector": {"matchLabels": {"app": "client"}}}],
            "ports": [{"port": "http"}]}]}
        apply(api, policy(server_ns, "allow-client", allow_client))
        assert wait_for(lambda: two_nodes.fetch("a", "b"), timeout=30,
                        what="allowed by namespace and pod selector, named port") == pod_ip("a")
        apply(api, policy(server_ns, "allow-client", {
            "podSelector": {}, "ingress": [{"from": [{"ipBlock": {
                "cidr": "10.244.0.0/16", "except": ["10.244.1.0/24"]}}]}]}))
        wait_for(blocked, timeout=30, what="ipBlock except")
        apply(api, policy(server_ns, "allow-client", allow_client),
              policy(client_ns, "no-egress", {"podSelector": {"matchLabels": {"app": "client"}},
                                              "policyTypes": ["Egress"]}))
        wait_for(blocked, timeout=30, what="egress default deny of the client")
        apply(api, policy(client_ns, "no-egress", {
            "podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "server"}}}],
                        "ports": [{"port": 8080, "protocol": "TCP"}]}]}))
        assert wait_for(lambda: two_nodes.fetch("a", "b"), timeout=30,
                        what="egress allowed to the server namespace") == pod_ip("a")
    finally:
        two_nodes.stop_agents()
        kubectl(api, "delete", "namespace", client_ns, server_ns, "--wait=false")
        for node_netns in two_nodes.nodes.values():
            node_netns.run(["iptables", "-F", "PROV-NP-FORWARD"])
