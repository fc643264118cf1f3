"""Measures this project's Service networking in one run on this machine.

- kube-proxy sync time for SERVICES Services x ENDPOINTS endpoints: full syncs (every chain
  written) and partial syncs (one Service's endpoints changed: top-level chains plus that Service's
  chains), each split into building the iptables-restore payload and applying it with
  iptables-restore --noflush; run in a network namespace of its own (`ip netns`), never on the host's
  own tables.
- DNS: queries per second and p99 latency for Service names (A records of DNS_SERVICES ClusterIP
  Services) from provisioner-dns against a real API server, side by side with dnsmasq answering the
  same names from a hosts file, in the same run with the same load generator (asyncio UDP, WINDOW
  queries in flight, DURATION seconds each). On a 2-core machine the Python load generator shares
  the CPU with the server under test: compare the two servers, not absolute figures.

- Pod-to-pod TCP throughput and request/response latency between two "nodes" (network namespaces
  joined by a veth link, each with a pod on a veth), through host-gw routes and through the VXLAN
  overlay the network agent programs (its own route code, run inside each node), side by side with
  node-to-node over the same link, in the same run, with the same Python sender. On one machine
  (lab hosts were not available to this benchmark): it shows the overlay's cost, not a NIC's speed.

Writes benchmarks/results/network.json and prints it. Run as root with
`.venv/bin/python benchmarks/bench_network.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402

from provisioner.components.proxy.proxier import Proxier  # noqa: E402
from provisioner.components.proxy.rules import NodeContext  # noqa: E402

SERVICES = 1000
ENDPOINTS = 10
FULL_ROUNDS = 3
PARTIAL_ROUNDS = 10
DNS_SERVICES = 200
WINDOW = 32
DURATION = 5.0


def summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"median_ms": round(s[len(s) // 2] * 1000, 3),
            "p99_ms": round(s[int(0.99 * (len(s) - 1))] * 1000, 3),
            "max_ms": round(s[-1] * 1000, 3), "samples": len(s)}


# -- kube-proxy ----------------------------------------------------------------------------------

def service(index: int) -> dict:
    return {"metadata": {"namespace": "bench", "name": f"svc-{index}"},
            "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{index // 250}.{index % 250 + 1}",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def endpoint_address(index: int, number: int, generation: int) -> str:
    """Unique per Service, endpoint and generation (a changed Service gets new addresses)."""
    flat = index * ENDPOINTS + number
    return f"10.{100 + generation % 100}.{flat // 256}.{flat % 256}"


def endpoint_slice(index: int, generation: int = 0) -> dict:
    return {"metadata": {"namespace": "bench", "name": f"svc-{index}-x",
                         "labels": {"kubernetes.io/service-name": f"svc-{index}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [endpoint_address(index, number, generation)],
                           "nodeName": "bench-node", "conditions": {"ready": True}}
                          for number in range(ENDPOINTS)]}


def proxy_inner() -> dict:
    """Runs inside the benchmark's netns: returns the sync figures."""
    from provisioner.components.proxy import iptables

    iptables.ensure_base()
    proxier = Proxier(NodeContext("bench-node", "10.100.0.0/14"))
    for index in range(SERVICES):
        proxier.service_changed(service(index))
        proxier.slice_changed(endpoint_slice(index))

    def timed(full: bool) -> tuple[float, float]:
        started = time.perf_counter()
        plan = proxier.plan(full)
        built = time.perf_counter()
        proxier.restore(plan.payload)
        proxier.commit(plan)
        return built - started, time.perf_counter() - built

    full = [timed(True) for _ in range(FULL_ROUNDS)]
    partial = []
    for round_ in range(PARTIAL_ROUNDS):
        proxier.slice_changed(endpoint_slice(random.randrange(SERVICES), round_ + 1))
        partial.append(timed(False))
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                           check=True).stdout.count("\n-A ")
    return {"services": SERVICES, "endpoints_per_service": ENDPOINTS, "nat_rules": rules,
            "full_sync": {"total": summary([b + a for b, a in full]),
                          "build": summary([b for b, _ in full]),
                          "iptables_restore": summary([a for _, a in full])},
            "partial_sync_one_service": {"total": summary([b + a for b, a in partial]),
                                         "build": summary([b for b, _ in partial]),
                                         "iptables_restore": summary([a for _, a in partial])}}


def bench_proxy() -> dict:
    name = f"bench-proxy-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        done = subprocess.run(["ip", "netns", "exec", name, sys.executable, __file__,
                               "--proxy-inner"], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


# -- pod to pod ----------------------------------------------------------------------------------

LINK = {"a": "192.168.88.1", "b": "192.168.88.2"}
CIDRS = {"a": "10.246.1.0/24", "b": "10.246.2.0/24"}
TRANSFER_SECONDS = 3.0
ROUND_TRIPS = 2000

SINK = r"""
import socket, sys
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 5201)); server.listen(4)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    mode = conn.recv(1)
    if mode == b"t":
        while conn.recv(1 << 20):
            pass
    else:
        while (data := conn.recv(64)):
            conn.sendall(data)
    conn.close()
"""

SOURCE = r"""
import json, socket, sys, time
target, seconds, trips = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
conn = socket.create_connection((target, 5201)); conn.sendall(b"t")
chunk = b"x" * (1 << 16); sent = 0; start = time.perf_counter()
while time.perf_counter() - start < seconds:
    conn.sendall(chunk); sent += len(chunk)
elapsed = time.perf_counter() - start; conn.close()
conn = socket.create_connection((target, 5201)); conn.sendall(b"r")
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
for _ in range(trips):
    t = time.perf_counter(); conn.sendall(b"p"); conn.recv(64); samples.append(time.perf_counter() - t)
conn.close(); samples.sort()
print(json.dumps({"throughput_mbit_s": round(sent * 8 / elapsed / 1e6),
                  "rtt_median_us": round(samples[len(samples) // 2] * 1e6, 1),
                  "rtt_p99_us": round(samples[int(0.99 * (len(samples) - 1))] * 1e6, 1)}))
"""

PROGRAM = r"""
import sys
from provisioner.components.netagent import plan, routes
me, mode = sys.argv[1], sys.argv[2]
nodes = [{"metadata": {"name": n}, "spec": {"podCIDR": c},
          "status": {"addresses": [{"type": "InternalIP", "address": a}]}}
         for n, c, a in (("a", "10.246.1.0/24", "192.168.88.1"), ("b", "10.246.2.0/24", "192.168.88.2"))]
wanted = plan.peer_routes(nodes, me, routes.local_networks(), mode)
own = next(n for n in nodes if n["metadata"]["name"] == me)
index = routes.ensure_vxlan(plan.internal_ip(own), plan.pod_cidr(own), 1, 4789, None)     if mode == "vxlan" else None
routes.sync(wanted, index)
"""


def _netns(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


def bench_pod_to_pod() -> dict:
    tag = os.getpid() % 10000
    names = {k: f"bpn{k}{tag}" for k in "ab"} | {f"p{k}": f"bpp{k}{tag}" for k in "ab"}
    servers: list[subprocess.Popen] = []
    try:
        for name in names.values():
            _netns("netns", "add", name)
            _netns("-n", name, "link", "set", "lo", "up")
        _netns("link", "add", "link0", "netns", names["a"], "type", "veth", "peer", "name",
               "link0", "netns", names["b"])
        for key in "ab":
            node, pod = names[key], names[f"p{key}"]
            subprocess.run(["ip", "netns", "exec", node, "sysctl", "-qw",
                            "net.ipv4.ip_forward=1"], check=True)
            _netns("-n", node, "addr", "add", f"{LINK[key]}/24", "dev", "link0")
            _netns("-n", node, "link", "set", "link0", "up")
            _netns("link", "add", "pod0", "netns", node, "type", "veth", "peer", "name", "eth0",
                   "netns", pod)
            gateway = CIDRS[key].replace("0/24", "1")
            _netns("-n", node, "addr", "add", f"{gateway}/24", "dev", "pod0")
            _netns("-n", node, "link", "set", "pod0", "up")
            _netns("-n", pod, "addr", "add", CIDRS[key].replace("0/24", "10/24"), "dev", "eth0")
            _netns("-n", pod, "link", "set", "eth0", "up")
            _netns("-n", pod, "route", "add", "default", "via", gateway)
        for namespace, address in ((names["pb"], "10.246.2.10"), (names["b"], LINK["b"])):
            server = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c",
                                       SINK, address], stdout=subprocess.PIPE, text=True)
            servers.append(server)
            assert server.stdout.readline().strip() == "ready"

        def measure(source: str, target: str) -> dict:
            done = subprocess.run(["ip", "netns", "exec", source, sys.executable, "-c", SOURCE,
                                   target, str(TRANSFER_SECONDS), str(ROUND_TRIPS)],
                                  capture_output=True, text=True, check=True, timeout=120)
            return json.loads(done.stdout)

        results = {"node_to_node": measure(names["a"], LINK["b"])}
        for mode in ("host-gw", "vxlan"):
            for key in "ab":
                subprocess.run(["ip", "netns", "exec", names[key], "ip", "route", "flush",
                                "proto", "177"], check=False)
                subprocess.run(["ip", "netns", "exec", names[key], sys.executable, "-c",
                                PROGRAM, key, mode], check=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
            results[f"pod_to_pod_{mode.replace('-', '_')}"] = measure(names["pa"], "10.246.2.10")
        # The pods' MTU left at 1500 over VXLAN (1450) costs fragmentation; as a CNI
        # configuration with "mtu": 1450 would set it:
        for key in "ab":
            _netns("-n", names[f"p{key}"], "link", "set", "eth0", "mtu", "1450")
            _netns("-n", names[key], "link", "set", "pod0", "mtu", "1450")
        results["pod_to_pod_vxlan_pod_mtu_1450"] = measure(names["pa"], "10.246.2.10")
        return {"note": "two network namespaces on one machine, veth link; Python sender",
                "transfer_seconds": TRANSFER_SECONDS, "round_trips": ROUND_TRIPS, **results}
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], check=False)


# -- DNS -------------------------------------------------------------------------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, tuple[float, asyncio.Future]] = {}

    def datagram_received(self, data: bytes, addr) -> None:
        query_id = int.from_bytes(data[:2], "big")
        entry = self.waiting.pop(query_id, None)
        if entry and not entry[1].done():
            entry[1].set_result((time.perf_counter() - entry[0], data[3] & 0x0F))


async def load(port: int, names: list[str]) -> dict:
    """WINDOW queries in flight for DURATION seconds; qps, latency, errors (non-NOERROR)."""
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Client,
                                                            remote_addr=("127.0.0.1", port))
    wires = [dns.message.make_query(name, "A").to_wire() for name in names]
    latencies: list[float] = []
    errors = 0
    timeouts = 0
    deadline = time.perf_counter() + DURATION
    next_id = 0

    async def worker() -> None:
        nonlocal next_id, errors, timeouts
        while time.perf_counter() < deadline:
            next_id = (next_id + 1) % 65536
            query_id = next_id
            wire = query_id.to_bytes(2, "big") + random.choice(wires)[2:]
            future = loop.create_future()
            client.waiting[query_id] = (time.perf_counter(), future)
            transport.sendto(wire)
            try:
                elapsed, rcode = await asyncio.wait_for(future, 2)
            except asyncio.TimeoutError:
                client.waiting.pop(query_id, None)
                timeouts += 1
                continue
            latencies.append(elapsed)
            errors += rcode != 0

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WINDOW)))
    elapsed = time.perf_counter() - started
    transport.close()
    return {"qps": round(len(latencies) / elapsed), **summary(latencies), "errors": errors,
            "timeouts": timeouts}


def wait_ready(port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            import dns.query
            reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port,
                                  timeout=1)
            if reply.answer:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer for {name} on port {port}")


def bench_dns() -> dict:
    from provisioner.dev import DevCluster

    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        cluster = DevCluster(Path(tmp) / "api")
        cluster.start()
        processes: list[subprocess.Popen] = []
        try:
            items = [{"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": f"svc-{i}", "namespace": "default"},
                      "spec": {"ports": [{"port": 80}]}} for i in range(DNS_SERVICES)]
            kubectl = str(Path(sys.prefix) / "bin" / "kubectl")
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
            subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": items}), text=True, env=env,
                check=True, capture_output=True)
            listed = json.loads(subprocess.run([kubectl, "get", "services", "-o", "json"],
                                               env=env, check=True, capture_output=True,
                                               text=True).stdout)["items"]
            names = [f"{s['metadata']['name']}.default.svc.cluster.local." for s in listed]
            hosts = Path(tmp) / "hosts"
            hosts.write_text("".join(f"{s['spec']['clusterIP']} {s['metadata']['name']}"
                                     ".default.svc.cluster.local\n" for s in listed))
            ours, theirs = free_udp_port(), free_udp_port()
            processes.append(subprocess.Popen(
                [str(Path(sys.prefix) / "bin" / "provisioner-dns"), "--kubeconfig",
                 str(cluster.kubeconfig), "--bind-address", "127.0.0.1", "--dns-port", str(ours),
                 "--upstream", "127.0.0.1:9", "--health-port", str(free_tcp_port()),
                 "--ready-port", str(free_tcp_port()), "--metrics-port", str(free_tcp_port())],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            processes.append(subprocess.Popen(
                ["dnsmasq", "--keep-in-foreground", "--listen-address=127.0.0.1",
                 "--bind-interfaces", f"--port={theirs}", "--no-resolv", "--no-hosts",
                 f"--addn-hosts={hosts}", "--local-ttl=5", "--pid-file=", "--user=root",
                 "--cache-size=10000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_ready(ours, names[-1])
            wait_ready(theirs, names[-1])
            return {"service_names": len(names), "window": WINDOW, "duration_s": DURATION,
                    "provisioner_dns": asyncio.run(load(ours, names)),
                    "dnsmasq_hosts_file": asyncio.run(load(theirs, names))}
        finally:
            for process in processes:
                process.terminate()
                process.wait()
            cluster.stop()


def main() -> None:
    if sys.argv[1:] == ["--proxy-inner"]:
        print(json.dumps(proxy_inner()))
        return
    if sys.argv[1:] == ["--pod-network-only"]:
        print(json.dumps(bench_pod_to_pod(), indent=2))
        return
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "kernel": platform.release()},
               "pod_network": bench_pod_to_pod(), "kube_proxy": bench_proxy(),
               "dns": bench_dns()}
    out = ROOT / "benchmarks" / "results" / "network.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
