"""provisioner-dns as a real process against a real API server: the Kubernetes DNS specification
(A, SRV, PTR for ClusterIP Services; per-endpoint records and hostnames for headless ones; CNAME for
ExternalName; pod records; dns-version), NXDOMAIN with the SOA, forwarding to a real upstream
(dnsmasq answering from a hosts file) with a cache, SERVFAIL when no upstream answers, TCP, health,
readiness and metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.conftest import free_port

from .conftest import kubectl, wait_for

DNS = str(Path(sys.prefix) / "bin" / "provisioner-dns")
NS = "dnstest"


def start_dnsmasq(hosts: Path) -> tuple[subprocess.Popen, int]:
    port = free_port("udp", "tcp")
    process = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--no-daemon",
                                "--listen-address=127.0.0.1", "--bind-interfaces",
                                f"--port={port}", "--no-resolv", "--no-hosts",
                                f"--addn-hosts={hosts}", "--local-ttl=60", "--pid-file=",
                                "--user=root",
                                "--log-facility=-"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port


class DnsProcess:
    def __init__(self, api, upstream: str, log: Path):
        self.port, self.health, self.ready, self.metrics = (free_port("udp", "tcp"), free_port("udp", "tcp"),
                                                            free_port("udp", "tcp"), free_port("udp", "tcp"))
        with open(log, "w") as sink:
            self.process = subprocess.Popen(
                [DNS, "--kubeconfig", str(api.kubeconfig), "--bind-address", "127.0.0.1",
                 "--dns-port", str(self.port), "--upstream", upstream,
                 "--health-port", str(self.health), "--ready-port", str(self.ready),
                 "--metrics-port", str(self.metrics)], stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready_or_exited, timeout=30, what="DNS ready")
        except AssertionError as error:
            self.process.kill()
            raise AssertionError(f"{error}; its log:\n{log.read_text()}") from None
        assert self.process.poll() is None, f"provisioner-dns exited: {log.read_text()}"

    def _ready_or_exited(self) -> bool:
        return self.process.poll() is not None or http_get(self.ready)[0] == 200

    def ask(self, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        if tcp:
            return dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=5)
        return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def http_get(port: int, path: str = "/ready") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return -1, ""


def texts(message: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in message.answer for rdata in rrset)


@pytest.fixture(scope="module")
def cluster_objects(api):
    kubectl(api, "create", "namespace", NS)
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": NS},
         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": NS},
         "spec": {"type": "ExternalName", "externalName": "example.org"}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "db-x", "namespace": NS,
                      "labels": {"kubernetes.io/service-name": "db"}},
         "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.244.1.7"], "hostname": "db-0",
                        "conditions": {"ready": True}},
                       {"addresses": ["10.244.1.8"], "conditions": {"ready": True}},
                       {"addresses": ["10.244.1.9"], "conditions": {"ready": False}}]}]
    kubectl(api, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": objects}))
    web = json.loads(kubectl(api, "get", "service", "web", "-n", NS, "-o", "json"))
    return {"web_ip": web["spec"]["clusterIP"]}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    hosts = tmp_path_factory.mktemp("dnsmasq") / "hosts"
    hosts.write_text("192.0.2.10 upstream.example\n")
    process, port = start_dnsmasq(hosts)
    yield port
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def server(api, cluster_objects, upstream, tmp_path_factory):
    dns_process = DnsProcess(api, f"127.0.0.1:{upstream}",
                             tmp_path_factory.mktemp("dns") / "dns.log")
    yield dns_process
    dns_process.stop()


def name(short: str) -> str:
    return f"{short}.{NS}.svc.cluster.local."


def test_cluster_ip_service_a_srv_and_ptr(server, cluster_objects):
    ip = cluster_objects["web_ip"]
    reply = wait_for(lambda: (r := server.ask(name("web"), "A")).answer and r, what="web's A")
    assert texts(reply) == [ip] and reply.flags & dns.flags.AA
    assert reply.answer[0].ttl == 5
    srv = server.ask(f"_http._tcp.{name('web')}", "SRV")
    assert texts(srv) == [f"0 100 80 {name('web')}"]
    assert [rdata.to_text() for rrset in srv.additional for rdata in rrset] == [ip]
    reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    assert texts(server.ask(reverse, "PTR")) == [name("web")]
    assert server.ask(name("web"), "AAAA").answer == []                       # NODATA
    assert server.ask(name("web"), "AAAA").rcode() == dns.rcode.NOERROR


def test_headless_service_answers_ready_endpoints_and_hostnames(server):
    assert texts(wait_for(lambda: server.ask(name("db"), "A"), what="db")) == \
        ["10.244.1.7", "10.244.1.8"]
    assert texts(server.ask(f"db-0.{name('db')}", "A")) == ["10.244.1.7"]
    assert texts(server.ask(f"10-244-1-8.{name('db')}", "A")) == ["10.244.1.8"]
    assert texts(server.ask(f"_pg._tcp.{name('db')}", "SRV")) == \
        [f"0 50 5432 10-244-1-8.{name('db')}", f"0 50 5432 db-0.{name('db')}"]
    assert texts(server.ask("7.1.244.10.in-addr.arpa.", "PTR")) == [f"db-0.{name('db')}"]


def test_external_name_pod_records_version_and_nxdomain(server):
    assert texts(server.ask(name("ext"), "A")) == ["example.org."]
    assert texts(server.ask(f"10-244-3-4.{NS}.pod.cluster.local.", "A")) == ["10.244.3.4"]
    assert texts(server.ask("dns-version.cluster.local.", "TXT")) == ['"1.1.0"']
    missing = server.ask(name("nope"), "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.authority and missing.authority[0].rdtype == dns.rdatatype.SOA


def test_a_service_deleted_disappears(api, server):
    kubectl(api, "create", "service", "clusterip", "brief", "--tcp=81:81", "-n", NS)
    wait_for(lambda: server.ask(name("brief"), "A").answer, what="brief's A")
    kubectl(api, "delete", "service", "brief", "-n", NS)
    wait_for(lambda: server.ask(name("brief"), "A").rcode() == dns.rcode.NXDOMAIN,
             what="brief gone")


def test_other_names_are_forwarded_and_cached_also_over_tcp(server):
    assert texts(server.ask("upstream.example.", "A")) == ["192.0.2.10"]
    assert texts(server.ask("upstream.example.", "A", tcp=True)) == ["192.0.2.10"]
    metrics = http_get(server.metrics, "/metrics")[1]
    hits = [line for line in metrics.splitlines() if line.startswith("coredns_cache_hits_total")]
    assert hits and float(hits[0].split()[-1]) >= 1
    assert 'coredns_dns_requests_total{' in metrics
    assert http_get(server.health, "/health") == (200, "OK")


def test_unreachable_upstream_gives_servfail(api, tmp_path):
    dead = DnsProcess(api, f"127.0.0.1:{free_port('udp', 'tcp')}", tmp_path / "dns.log")
    try:
        reply = dead.ask("upstream.example.", "A")
        assert reply.rcode() == dns.rcode.SERVFAIL
    finally:
        dead.stop()


def test_bad_flags_are_one_line():
    done = subprocess.run([DNS, "--kubeconfig", "/nonexistent/dns.conf"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1 and "--kubeconfig /nonexistent/dns.conf" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
