"""kube-proxy as a real process in a network namespace of its own, against a real API server:
ClusterIP traffic balanced over ready endpoints only (terminating ones as a fallback), REJECT
without endpoints, ClientIP affinity, internal/externalTrafficPolicy Local, NodePort on the node's
address from another host, kube-proxy's chain names, partial syncs, recovery after someone flushes
the rules, healthz and metrics. The host's own iptables are never touched."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from provisioner.dev import DevCluster

from .conftest import SESSION, kubectl, wait_for
from .netns import Forwarder, Netns

KUBE_PROXY = str(Path(sys.prefix) / "bin" / "kube-proxy")
NODE = "node-a"
NODE_IP = "10.250.0.1"
ENDPOINTS = {"a1": "10.250.0.2", "a2": "10.250.0.3", "b1": "10.250.0.4"}   # b1: on node-b
CLIENT_IP = "10.251.0.2"          # another host, reaching NodePorts through a veth

ENDPOINT_SERVER = r"""
import http.server, sys, threading
class Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.server_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
servers = [http.server.ThreadingHTTPServer((ip, 8080), Who) for ip in sys.argv[1:]]
for s in servers[1:]: threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
servers[0].serve_forever()
"""


class ProxyNode:
    """A node's network namespace running kube-proxy, endpoints serving on local addresses."""

    def __init__(self, api: DevCluster, base: Path):
        self.api = api
        self.ns = self.client = self.forwarder = None
        try:
            self._set_up(api, base)
        except BaseException:
            self.close()
            raise

    def _set_up(self, api: DevCluster, base: Path) -> None:
        self.ns = Netns(f"kpt{SESSION}")
        # the node's own addresses on a veth pair kept inside (no dummy module on every kernel)
        self.ns.ip("link", "add", "dum0", "type", "veth", "peer", "name", "dum1")
        self.ns.ip("link", "set", "dum1", "up")
        for address in (NODE_IP, *ENDPOINTS.values()):
            self.ns.ip("addr", "add", f"{address}/24", "dev", "dum0")
        self.ns.ip("link", "set", "dum0", "up")
        # a node has a default route: ClusterIPs are routed somewhere before nat OUTPUT DNATs
        self.ns.ip("route", "add", "default", "dev", "dum0")
        self.client = Netns(f"kpc{SESSION}")
        subprocess.run(["ip", "link", "add", f"kpv{SESSION}", "netns", self.ns.name, "type",
                        "veth", "peer", "name", "eth0", "netns", self.client.name], check=True)
        self.ns.ip("addr", "add", "10.251.0.1/24", "dev", f"kpv{SESSION}")
        self.ns.ip("link", "set", f"kpv{SESSION}", "up")
        self.client.ip("addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        self.client.ip("link", "set", "eth0", "up")
        self.client.ip("route", "add", "default", "via", "10.251.0.1")
        self.forwarder = Forwarder(self.ns, 6443, api.api_port)
        config = yaml.safe_load(api.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:6443"
        self.kubeconfig = base / "kube-proxy.conf"
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)
        self.config = base / "config.yaml"
        self.config.write_text(yaml.safe_dump({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig)}, "hostnameOverride": NODE,
            "clusterCIDR": "10.250.0.0/24",
            "iptables": {"syncPeriod": "3s", "minSyncPeriod": "0s"}}))
        server = self.ns.popen([sys.executable, "-c", ENDPOINT_SERVER, *ENDPOINTS.values()],
                               stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        self.log = base / "kube-proxy.log"
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.proxy = self.ns.popen([KUBE_PROXY, "--config", str(self.config)], stdout=log,
                                       stderr=subprocess.STDOUT)
        wait_for(lambda: self.healthz()[0] == 200, timeout=60, what="kube-proxy healthz")

    def stop(self) -> int:
        self.proxy.send_signal(signal.SIGTERM)
        return self.proxy.wait(timeout=30)

    def healthz(self) -> tuple[int, dict]:
        return self.ns.call(_get, "http://127.0.0.1:10256/healthz")

    def fetch(self, address: str, port: int, timeout: float = 2) -> str | None:
        """Who answered a GET to address:port from inside the node (None if nobody)."""
        status, body = self.ns.call(_get, f"http://{address}:{port}/", timeout)
        return body if status == 200 else None

    def iptables_save(self) -> str:
        return self.ns.run(["iptables-save"]).stdout

    def close(self) -> None:
        for part in (self.forwarder, self.ns, self.client):
            if part is not None:
                part.close()


def _get(url: str, timeout: float = 2) -> tuple[int, dict | str | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text.startswith("{") else text
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except ConnectionRefusedError:
        return -1, "refused"
    except OSError as error:
        return -1, "refused" if "refused" in str(error).lower() else None


@pytest.fixture(scope="module")
def node(api, tmp_path_factory):
    subprocess.run(["ip", "netns", "del", f"kpt{SESSION}"], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", f"kpc{SESSION}"], capture_output=True, check=False)
    node = ProxyNode(api, tmp_path_factory.mktemp("proxy-node"))
    yield node
    node.close()


def service(api: DevCluster, name: str, endpoints: list[dict], **spec) -> dict:
    """A Service (port 80 -> 8080, named http) and its one EndpointSlice, created through the API."""
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     **spec}}
    created = json.loads(kubectl(api, "apply", "-o", "json", "-f", "-", stdin=json.dumps(body)))
    set_endpoints(api, name, endpoints)
    return created


def set_endpoints(api: DevCluster, name: str, endpoints: list[dict]) -> None:
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": f"{name}-abc", "namespace": "default",
                           "labels": {"kubernetes.io/service-name": name}},
              "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
              "endpoints": endpoints}
    kubectl(api, "apply", "-f", "-", stdin=json.dumps(slice_))


def endpoint(key: str, ready: bool = True, terminating: bool = False) -> dict:
    return {"addresses": [ENDPOINTS[key]], "nodeName": "node-b" if key.startswith("b") else NODE,
            "conditions": {"ready": ready, "serving": ready or terminating,
                           "terminating": terminating}}


def responders(node: ProxyNode, address: str, port: int, tries: int = 24) -> set[str]:
    return {node.fetch(address, port) for _ in range(tries)}


def chain_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def test_cluster_ip_balances_over_ready_endpoints_with_kube_proxy_chain_names(api, node):
    svc = service(api, "web", [endpoint("a1"), endpoint("a2"), endpoint("b1", ready=False)])
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    assert responders(node, ip, 80) == {ENDPOINTS["a1"], ENDPOINTS["a2"]}
    rules = node.iptables_save()
    svc_chain = "KUBE-SVC-" + chain_hash("default/web:httptcp")
    sep_chain = "KUBE-SEP-" + chain_hash(f"default/web:httptcp{ENDPOINTS['a1']}:8080")
    assert f"-A KUBE-SERVICES -d {ip}/32 -p tcp" in rules and f"-j {svc_chain}" in rules
    assert f"-A {svc_chain}" in rules and "--probability 0.50000000000" in rules
    assert f"-j DNAT --to-destination {ENDPOINTS['a1']}:8080" in rules and sep_chain in rules
    assert ENDPOINTS["b1"] not in rules                          # not ready: no chain at all
    assert "kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully" in rules


def test_terminating_endpoints_serve_only_when_nothing_is_ready(api, node):
    svc = service(api, "draining", [endpoint("a1", ready=False, terminating=True),
                                    endpoint("b1", ready=False, terminating=False)])
    ip = svc["spec"]["clusterIP"]
    assert wait_for(lambda: node.fetch(ip, 80), what="the fallback") == ENDPOINTS["a1"]
    set_endpoints(api, "draining", [endpoint("a1", ready=False, terminating=True),
                                    endpoint("a2")])
    wait_for(lambda: responders(node, ip, 80, 8) == {ENDPOINTS["a2"]}, what="ready wins")


def test_a_service_without_endpoints_is_rejected_and_removed_chains_go(api, node):
    svc = service(api, "empty", [endpoint("a1")])
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    chain = "KUBE-SVC-" + chain_hash("default/empty:httptcp")
    assert chain in node.iptables_save()
    set_endpoints(api, "empty", [])
    wait_for(lambda: node.ns.call(_get, f"http://{ip}:80/") == (-1, "refused"),
             what="REJECT (connection refused, not a timeout)")
    rules = node.iptables_save()
    assert chain not in rules
    assert '"default/empty:http has no endpoints"' in rules and "-j REJECT" in rules


def test_client_ip_affinity_keeps_one_endpoint(api, node):
    svc = service(api, "sticky", [endpoint("a1"), endpoint("a2")], sessionAffinity="ClientIP")
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    assert len(responders(node, ip, 80, 16)) == 1
    assert "--rcheck --seconds 10800 --reap" in node.iptables_save()


def test_internal_traffic_policy_local_uses_this_nodes_endpoints(api, node):
    svc = service(api, "local", [endpoint("a1"), endpoint("b1")],
                  internalTrafficPolicy="Local")
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    assert responders(node, ip, 80, 16) == {ENDPOINTS["a1"]}


def test_node_port_from_another_host_and_external_traffic_policy_local(api, node):
    svc = service(api, "np", [endpoint("a1"), endpoint("b1")], type="NodePort")
    port = svc["spec"]["ports"][0]["nodePort"]
    wait_for(lambda: node.client.call(_get, f"http://10.251.0.1:{port}/")[0] == 200,
             what="the NodePort from another host")
    # every node address: the dummy interface's too
    assert node.fetch(NODE_IP, port) in (ENDPOINTS["a1"], ENDPOINTS["b1"])
    local = service(api, "nplocal", [endpoint("a1"), endpoint("b1")], type="NodePort",
                    externalTrafficPolicy="Local")
    local_port = local["spec"]["ports"][0]["nodePort"]
    wait_for(lambda: node.client.call(_get, f"http://10.251.0.1:{local_port}/")[0] == 200,
             what="the Local NodePort")
    seen = {node.client.call(_get, f"http://10.251.0.1:{local_port}/")[1] for _ in range(12)}
    assert seen == {ENDPOINTS["a1"]}
    assert "KUBE-EXT-" + chain_hash("default/nplocal:httptcp") in node.iptables_save()


def test_partial_syncs_and_a_full_resync_after_the_rules_are_flushed(api, node):
    svc = service(api, "flushed", [endpoint("a1")])
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    metrics = node.ns.call(_get, "http://127.0.0.1:10249/metrics")[1]
    assert "kubeproxy_sync_partial_proxy_rules_duration_seconds_count" in metrics
    partial = [line for line in metrics.splitlines()
               if line.startswith("kubeproxy_sync_partial_proxy_rules_duration_seconds_count")]
    assert float(partial[0].split()[-1]) >= 1
    # Someone flushes the nat rules and removes the canary: the next periodic check resyncs.
    # (A periodic sync already past its canary check may put the rules back first; the check
    # after it still finds the canary gone.)
    node.ns.run(["iptables", "-t", "nat", "-F", "KUBE-SERVICES"])
    node.ns.run(["iptables", "-t", "mangle", "-X", "KUBE-PROXY-CANARY"])
    assert node.fetch(ip, 80, timeout=1) is None
    assert wait_for(lambda: node.fetch(ip, 80), timeout=30, what="rules restored") \
        == ENDPOINTS["a1"]
    wait_for(lambda: "canary chain is gone" in node.log.read_text(), timeout=30,
             what="the canary check to notice")
    wait_for(lambda: node.ns.run(["iptables", "-t", "mangle", "-n", "-L", "KUBE-PROXY-CANARY"])
             .returncode == 0, timeout=30, what="the canary chain recreated")
    assert node.fetch(ip, 80) == ENDPOINTS["a1"]


def test_rules_outlive_kube_proxy_and_a_restart_does_not_flush_them(api, node):
    svc = service(api, "steady", [endpoint("a1")])
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: node.fetch(ip, 80), what="the ClusterIP answering")
    assert node.stop() == 0
    try:
        assert node.fetch(ip, 80) == ENDPOINTS["a1"]          # stopped: traffic still flows
        # what a starting kube-proxy does before its first sync leaves the rules alone
        done = node.ns.run([sys.executable, "-c", "from provisioner.components.proxy import "
                            "iptables; iptables.ensure_base()"])
        assert done.returncode == 0, done.stderr
        assert node.fetch(ip, 80) == ENDPOINTS["a1"]
    finally:
        node.start()


def test_healthz_answers_as_kube_proxys(node):
    status, body = node.healthz()
    assert status == 200 and set(body) >= {"lastUpdated", "currentTime"}


@pytest.mark.parametrize("document, message", [
    ({"apiVersion": "v1", "kind": "Pod"}, "expected apiVersion kubeproxy.config.k8s.io/v1alpha1"),
    ({"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
      "mode": "ipvs"}, "mode 'ipvs' is not supported"),
    ({"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
      "iptables": {"syncPeriod": "soon"}}, "iptables.syncPeriod: 'soon' is not a duration"),
    ({"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
      "clusterCIDR": "10.0.0.0/33"}, "clusterCIDR '10.0.0.0/33'"),
])
def test_bad_configuration_is_one_line_naming_the_field(tmp_path, document, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    done = subprocess.run([KUBE_PROXY, "--config", str(path), "--kubeconfig", "/dev/null"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
