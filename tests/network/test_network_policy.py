"""NetworkPolicies enforced by the network agent, with real traffic between two "nodes" (network
namespaces joined by one link, the agents running in them against a real API server, as in
test_netagent). Named ports: in an egress rule a port name is each destination pod's own container
port of that name, so `ports: [{port: http}]` opens exactly the number every peer pod calls `http`,
and a rule without peers opens it on every pod that names such a port; in an ingress rule the name
is the receiving pod's own port. Pods on one node's bridge: their traffic is bridged, not routed,
and policies still apply (the agent turns on bridge-nf-call-iptables). Plus the rules the agent
writes for a port name, checked as a table.

The pods here use addresses of their own (.21, .22, and 10.244.3.0/24 on node b's bridge) added to
test_netagent's pod namespaces, so objects that module leaves behind for its .10 pods never select
them."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys

import pytest

from provisioner.components.netagent import policy as np

from .conftest import SESSION, kubectl, wait_for
from .netns import WHO, Netns
from .test_netagent import NODES, TwoNodes

CLIENT = NODES["a"][1].replace("0/24", "21")          # the client pod, on node a
SERVER = NODES["b"][1].replace("0/24", "21")          # names http=8080, admin=9090, on node b
DECOY = NODES["b"][1].replace("0/24", "22")           # names http=9090, on node b
TARGETS = [(SERVER, 8080), (SERVER, 9090), (DECOY, 8080), (DECOY, 9090)]
BRIDGE_GATEWAY = "10.244.3.1"                         # node b's bridge, two pods behind it
BRIDGED = {"server": "10.244.3.21", "client": "10.244.3.22"}


def _get(target: str, port: int, source: str = CLIENT) -> str | None:
    """From the source pod's address; its body is the source address the server saw."""
    connection = http.client.HTTPConnection(target, port, timeout=1,
                                            source_address=(source, 0))
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode()
    except OSError:
        return None
    finally:
        connection.close()


class Traffic:
    def __init__(self, api, nodes: TwoNodes):
        self.api, self.nodes = api, nodes
        self.client_ns, self.server_ns = f"npp-client-{SESSION}", f"npp-server-{SESSION}"
        self.bridged: dict[str, Netns] = {}

    def bridge_pods(self) -> None:
        """Two pods behind one bridge on node b (as the CNI bridge plugin wires them)."""
        node = self.nodes.nodes["b"]
        node.ip("link", "add", "cbr0", "type", "bridge")
        node.ip("addr", "add", f"{BRIDGE_GATEWAY}/24", "dev", "cbr0")
        node.ip("link", "set", "cbr0", "up")
        for role, address in BRIDGED.items():
            self.bridged[role] = pod = Netns(f"npb{role[0]}{SESSION}")
            self.nodes.parts.append(pod)
            subprocess.run(["ip", "link", "add", f"veth{role}", "netns", node.name, "type",
                            "veth", "peer", "name", "eth0", "netns", pod.name], check=True)
            node.ip("link", "set", f"veth{role}", "master", "cbr0")
            node.ip("link", "set", f"veth{role}", "up")
            pod.ip("addr", "add", f"{address}/24", "dev", "eth0")
            pod.ip("link", "set", "eth0", "up")
            pod.ip("route", "add", "default", "via", BRIDGE_GATEWAY)
        server = self.bridged["server"].popen(
            [sys.executable, "-c", WHO, f"{BRIDGED['server']}:8080",
             f"{BRIDGED['server']}:9090"], stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"

    def bridged_answers(self) -> list[int]:
        """The server's ports the client on the same bridge reaches."""
        client = BRIDGED["client"]
        return [port for port in (8080, 9090) if self.bridged["client"].call(
            _get, BRIDGED["server"], port, client) == client]

    def answered(self) -> list[tuple[str, int]]:
        """The targets the client reaches (each answer must carry the client's own address)."""
        return [(target, port) for target, port in TARGETS
                if self.nodes.pods["a"].call(_get, target, port) == CLIENT]

    def apply(self, *objects: dict) -> None:
        kubectl(self.api, "apply", "-f", "-", stdin=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def pod(self, namespace: str, name: str, node_key: str, ip: str, labels: dict,
            ports: dict[str, int]) -> None:
        self.apply({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "spec": {"nodeName": f"na-{node_key}-{SESSION}", "containers": [
                        {"name": "c", "image": "busybox", "ports": [
                            {"name": port_name, "containerPort": number}
                            for port_name, number in ports.items()]}]}})
        kubectl(self.api, "patch", "pod", name, "-n", namespace, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": {
                    "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}))

    def policy(self, namespace: str, name: str, spec: dict) -> None:
        self.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": name, "namespace": namespace}, "spec": spec})

    def expect(self, reached: list[tuple[str, int]], what: str) -> None:
        last: list = []

        def settled() -> bool:
            last[:] = self.answered()
            return last == reached
        try:
            wait_for(settled, timeout=30, what=what)
        except AssertionError:
            raise AssertionError(f"{what}: the client reached {last}, expected {reached}") \
                from None


@pytest.fixture(scope="module")
def traffic(api, tmp_path_factory):
    nodes = TwoNodes(api, tmp_path_factory.mktemp("netpolicy-ports"))
    try:
        nodes.pods["a"].ip("addr", "add", f"{CLIENT}/24", "dev", "eth0")
        for address in (SERVER, DECOY):
            nodes.pods["b"].ip("addr", "add", f"{address}/24", "dev", "eth0")
        server = nodes.pods["b"].popen([sys.executable, "-c", WHO,
                                        *(f"{t}:{p}" for t, p in TARGETS)],
                                       stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        traffic = Traffic(api, nodes)
        for namespace in (traffic.client_ns, traffic.server_ns):
            traffic.apply({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": namespace, "labels": {"npp": namespace}}})
        traffic.pod(traffic.client_ns, "client", "a", CLIENT, {"app": "client"}, {})
        traffic.pod(traffic.server_ns, "server", "b", SERVER, {"app": "server", "role": "main"},
                    {"http": 8080, "admin": 9090})
        traffic.pod(traffic.server_ns, "decoy", "b", DECOY, {"app": "server", "role": "decoy"},
                    {"http": 9090})
        traffic.bridge_pods()
        traffic.pod(traffic.server_ns, "bridged-server", "b", BRIDGED["server"],
                    {"app": "bridged-server"}, {"http": 8080, "admin": 9090})
        traffic.pod(traffic.client_ns, "bridged-client", "b", BRIDGED["client"],
                    {"app": "bridged-client"}, {})
        nodes.forget_routes()
        nodes.start_agents("host-gw")
        traffic.expect(TARGETS, "every target open before any policy")
        yield traffic
    finally:
        try:
            nodes.stop_agents()
        finally:
            for namespace in (f"npp-client-{SESSION}", f"npp-server-{SESSION}"):
                kubectl(api, "delete", "pods,networkpolicies", "--all", "-n", namespace,
                        "--grace-period=0", "--force", "--ignore-not-found")
            for node_netns in nodes.nodes.values():
                node_netns.run(["iptables", "-F", np.TOP_CHAIN])
            nodes.close()


def test_an_egress_named_port_opens_each_destination_pods_own_port_of_that_name(traffic):
    to_servers = {"namespaceSelector": {"matchLabels": {"npp": traffic.server_ns}},
                  "podSelector": {"matchLabels": {"app": "server"}}}
    egress = {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}
    try:
        traffic.policy(traffic.client_ns, "egress", {**egress, "egress": [
            {"to": [to_servers], "ports": [{"port": "http"}]}]})
        # the server calls 8080 `http`, the decoy 9090: each gets its own number, nothing else
        traffic.expect([(SERVER, 8080), (DECOY, 9090)], "egress to `http` of each server pod")

        # no peers: every pod with a TCP port named `admin` (only the server) on that port
        traffic.policy(traffic.client_ns, "egress", {**egress, "egress": [{"ports": [{"port": "admin"}]}]})
        traffic.expect([(SERVER, 9090)], "egress to `admin` of any pod")

        # an ipBlock peer: the pods inside it (not in its excepts) that name the port
        traffic.policy(traffic.client_ns, "egress", {**egress, "egress": [{
            "to": [{"ipBlock": {"cidr": NODES["b"][1], "except": [f"{SERVER}/32"]}}],
            "ports": [{"port": "http"}]}]})
        traffic.expect([(DECOY, 9090)], "egress to `http` of pods inside an ipBlock")

        # the name is looked up with the rule's protocol: no pod has a UDP port `http`
        traffic.policy(traffic.client_ns, "egress", {**egress, "egress": [
            {"to": [to_servers], "ports": [{"port": "http", "protocol": "UDP"}]}]})
        traffic.expect([], "egress to UDP `http`")
    finally:
        kubectl(traffic.api, "delete", "networkpolicy", "egress", "-n", traffic.client_ns,
                "--ignore-not-found")
    traffic.expect(TARGETS, "every target open once the egress policy is gone")


def test_an_ingress_named_port_is_the_receiving_pods_own_port(traffic):
    try:
        traffic.policy(traffic.server_ns, "ingress", {
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"npp": traffic.client_ns}}}],
                         "ports": [{"port": "http"}]}]})
        traffic.expect([(SERVER, 8080), (DECOY, 9090)], "ingress to each pod's own `http`")
        traffic.policy(traffic.server_ns, "ingress", {
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [{"ports": [{"port": "admin"}]}]})
        traffic.expect([(SERVER, 9090)], "ingress to `admin`, which only the server names")
    finally:
        kubectl(traffic.api, "delete", "networkpolicy", "ingress", "-n", traffic.server_ns,
                "--ignore-not-found")


def test_policies_apply_between_pods_bridged_on_one_node(traffic):
    server = {"podSelector": {"matchLabels": {"app": "bridged-server"}}}
    assert wait_for(traffic.bridged_answers, timeout=30, what="open bridge") == [8080, 9090]
    try:
        traffic.policy(traffic.server_ns, "bridged", {**server, "policyTypes": ["Ingress"]})
        wait_for(lambda: traffic.bridged_answers() == [], timeout=30,
                 what="default deny between pods on one bridge")
        traffic.policy(traffic.server_ns, "bridged", {**server, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"npp": traffic.client_ns}}}],
            "ports": [{"port": "admin"}]}]})
        wait_for(lambda: traffic.bridged_answers() == [9090], timeout=30,
                 what="the named port allowed on the bridge, the other still denied")
    finally:
        kubectl(traffic.api, "delete", "networkpolicy", "bridged", "-n", traffic.server_ns,
                "--ignore-not-found")


def info(name: str, ip: str, ports: dict, namespace: str = "web", node: str = "n2") -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": port_name, "containerPort": number, "protocol": protocol}
                for (port_name, protocol), number in ports.items()]}]},
            "status": {"phase": "Running", "podIP": ip}}


PODS = [info("client", "10.0.1.5", {}, namespace="app", node="n1"),
        info("api", "10.0.2.5", {("http", "TCP"): 8080, ("dns", "UDP"): 53}),
        info("web", "10.0.2.6", {("http", "TCP"): 80}),
        info("db", "10.0.3.5", {("sql", "TCP"): 5432})]
NAMESPACES = [{"metadata": {"name": "app"}}, {"metadata": {"name": "web"}}]


@pytest.mark.parametrize("rule, allowed", [
    ({"to": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]},
     ["-d 10.0.2.5/32 -p tcp -m tcp --dport 8080", "-d 10.0.2.6/32 -p tcp -m tcp --dport 80"]),
    ({"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}],
      "ports": [{"port": "http"}, {"port": 443}]},
     ["-d 10.0.2.6/32 -p tcp -m tcp --dport 80", "-d 10.0.2.6/32 -p tcp -m tcp --dport 443"]),
    ({"ports": [{"port": "dns", "protocol": "UDP"}]},
     ["-d 10.0.2.5/32 -p udp -m udp --dport 53"]),
    ({"ports": [{"port": "dns"}]}, []),                          # dns is UDP, the rule TCP
    ({"to": [{"ipBlock": {"cidr": "10.0.2.0/24", "except": ["10.0.2.6/32"]}}],
      "ports": [{"port": "http"}]},
     ["-d 10.0.2.5/32 -p tcp -m tcp --dport 8080"]),
    ({"to": [{"podSelector": {}}], "ports": [{"port": "http"}]}, []),   # no pod in `app` names it
], ids=["each-peer-its-own-number", "named-and-numbered", "no-peers-any-pod-udp",
        "protocol-must-match", "ipblock-pods-inside", "selector-without-such-pod"])
def test_egress_named_port_rules(rule, allowed):
    spec = {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
            "egress": [rule]}
    chains = np.build([{"metadata": {"name": "p", "namespace": "app"}, "spec": spec}], PODS,
                      NAMESPACES, "n1")
    (chain,) = [name for name in chains if name.startswith(np.CHAIN_PREFIX + "OUT-")]
    allow = f" -j MARK --set-xmark {np.MARK}/{np.MARK}"
    found = sorted(line.removeprefix(f"-A {chain} ").removesuffix(allow)
                   for line in chains[chain] if line.endswith(allow))
    assert found == sorted(allowed)
