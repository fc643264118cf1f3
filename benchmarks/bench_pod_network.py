"""Measures pod-to-pod networking across two real lab hosts, side by side with host-to-host on the
same two hosts, in the same run.

Brings up a lab of its own (`provisioner lab up --name LAB --nodes 3`, systemd-nspawn hosts on one
bridge) and creates a cluster on it: host 1 the control plane with etcd, hosts 2 and 3 workers (a
host that is both control plane and worker trips `verify` and `delete cluster` today). Four pods
from the offline `python:3.11` image, pinned with nodeName: on worker 3 a sink/echo server on the
pod network and the same server on host networking (the host's own address); on worker 2 a client
on the pod network and one on host networking. The same Python measurer runs in each client through `kubectl exec` and times itself
(kubectl's own overhead is outside the figures): TCP throughput for TRANSFER_SECONDS with 64 KiB
writes, then ROUND_TRIPS one-byte request/response exchanges on one connection (TCP_NODELAY).
Pod and host paths alternate for ROUNDS rounds so both see the same machine load. The pod path is
whatever the network agent programmed between the hosts (recorded: host-gw when they share a link,
VXLAN otherwise) and the pods' MTU.

On a 2-core machine shared with other work, and with a Python sender, compare the two paths with
each other, not with a NIC's line rate. Writes benchmarks/results/pod_network.json and prints it.
Tears the cluster and the lab down at the end, also on failure. Run as root with
`.venv/bin/python benchmarks/bench_pod_network.py` (PROVISIONER_BENCH_POD_NETWORK_LAB renames the
lab).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAB = os.environ.get("PROVISIONER_BENCH_POD_NETWORK_LAB", "netbench")
NAMESPACE = "netbench"
IMAGE = "python:3.11"
PORT = 45201                     # the servers' port, on the pod network and on the host's address
TRANSFER_SECONDS = 3.0
ROUND_TRIPS = 2000
ROUNDS = 11

SERVER = r"""
import socket, sys, threading
def serve(conn):
    mode = conn.recv(1)
    if mode == b"t":
        while conn.recv(1 << 20):
            pass
    else:
        while (data := conn.recv(64)):
            conn.sendall(data)
    conn.close()
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1]))); server.listen(8)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

CLIENT = r"""
import json, socket, sys, time
target, port, seconds, trips = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
conn = socket.create_connection((target, port), timeout=30); conn.sendall(b"t")
chunk = b"x" * (1 << 16); sent = 0; start = time.perf_counter()
while time.perf_counter() - start < seconds:
    conn.sendall(chunk); sent += len(chunk)
conn.shutdown(socket.SHUT_WR); conn.recv(1)          # the sink has read everything
elapsed = time.perf_counter() - start; conn.close()
conn = socket.create_connection((target, port), timeout=30); conn.sendall(b"r")
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(100):                                 # warm-up
    conn.sendall(b"p"); conn.recv(64)
samples = []
for _ in range(trips):
    t = time.perf_counter(); conn.sendall(b"p"); conn.recv(64); samples.append(time.perf_counter() - t)
conn.close(); samples.sort()
print(json.dumps({"throughput_mbit_s": round(sent * 8 / elapsed / 1e6),
                  "rtt_median_us": round(samples[len(samples) // 2] * 1e6, 1),
                  "rtt_p99_us": round(samples[int(0.99 * (len(samples) - 1))] * 1e6, 1)}))
"""

# Which interface carries the route to a podCIDR, and this pod's eth0 MTU (read inside pods).
ROUTE_PROBE = r"""
import ipaddress, json, socket, struct, sys
cidr = ipaddress.ip_network(sys.argv[1])
found = None
for line in open("/proc/net/route").read().splitlines()[1:]:
    iface, dest, gateway, _, _, _, _, mask = line.split()[:8]
    net = ipaddress.ip_network((socket.inet_ntoa(struct.pack("<L", int(dest, 16))),
                                socket.inet_ntoa(struct.pack("<L", int(mask, 16)))))
    if net == cidr:
        found = {"dev": iface, "via": socket.inet_ntoa(struct.pack("<L", int(gateway, 16)))}
print(json.dumps(found))
"""


class Run:
    """The CLI and kubectl against this benchmark's own state directory and cluster."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.env = dict(os.environ, PROVISIONER_STATE_DIR=str(scratch))
        self.kubeconfig = scratch / "admin.conf"

    def provisioner(self, *args: str, timeout: float = 1800) -> str:
        done = subprocess.run([str(BIN / "provisioner"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"provisioner {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 180) -> str:
        done = subprocess.run([str(BIN / "kubectl"), *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout,
                              env=dict(self.env, KUBECONFIG=str(self.kubeconfig)))
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:4])} failed: {done.stderr.strip()}")
        return done.stdout


def cluster_spec(scratch: Path) -> Path:
    """The first lab host runs the control plane and etcd, the other two are workers."""
    inventory = yaml.safe_load((scratch / "labs" / LAB / "inventory.yaml").read_text())
    first, *workers = inventory["hosts"][:3]
    hosts = [dict(first, roles=["control-plane", "etcd"]),
             *(dict(host, roles=["worker"]) for host in workers)]
    spec = scratch / "cluster.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": LAB},
        "spec": {"ssh": {"user": "root", "key": inventory["ssh"]["key"]}, "hosts": hosts}}))
    return spec


def pod(name: str, node: str, host_network: bool, command: list[str]) -> dict:
    spec = {"nodeName": node, "hostNetwork": host_network, "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                            "command": command}]}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def start_pods(run: Run, client_node: str, server_node: str) -> dict[str, dict]:
    idle = ["python3", "-c", "import time; time.sleep(1e9)"]
    serve = ["python3", "-u", "-c", SERVER, str(PORT)]
    pods = [pod("server-pod", server_node, False, serve),
            pod("server-host", server_node, True, serve),
            pod("client-pod", client_node, False, idle),
            pod("client-host", client_node, True, idle)]
    run.kubectl("create", "namespace", NAMESPACE)
    run.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                      "items": pods}))
    run.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all",
                "--timeout=300s", timeout=330)
    found = json.loads(run.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json"))["items"]
    by_name = {p["metadata"]["name"]: p for p in found}
    deadline = time.monotonic() + 60
    for name in ("server-pod", "server-host"):       # the servers listen before anyone measures
        while "listening" not in run.kubectl("-n", NAMESPACE, "logs", name):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never started listening")
            time.sleep(0.5)
    return by_name


def measure(run: Run, client: str, target: str) -> dict:
    out = run.kubectl("-n", NAMESPACE, "exec", client, "--", "python3", "-c", CLIENT, target,
                      str(PORT), str(TRANSFER_SECONDS), str(ROUND_TRIPS), timeout=300)
    return json.loads(out)


def in_pod(run: Run, name: str, program: str, *args: str) -> object:
    return json.loads(run.kubectl("-n", NAMESPACE, "exec", name, "--", "python3", "-c", program,
                                  *args))


def summarize(rounds: list[dict]) -> dict:
    throughput = [r["throughput_mbit_s"] for r in rounds]
    return {"throughput_mbit_s_median": statistics.median(throughput),
            "throughput_mbit_s_range": [min(throughput), max(throughput)],
            "rtt_median_us_median": statistics.median(r["rtt_median_us"] for r in rounds),
            "rtt_p99_us_median": statistics.median(r["rtt_p99_us"] for r in rounds),
            "rounds": rounds}


def bench(run: Run) -> dict:
    started = time.monotonic()
    run.provisioner("lab", "up", "--name", LAB, "--nodes", "3")
    spec = cluster_spec(run.scratch)
    run.provisioner("create", "cluster", "-f", str(spec))
    run.provisioner("kubeconfig", "-f", str(spec), "-o", str(run.kubeconfig))
    bring_up = time.monotonic() - started
    nodes = {n["metadata"]["name"]: n for n in
             json.loads(run.kubectl("get", "nodes", "-o", "json"))["items"]}
    hosts = yaml.safe_load(spec.read_text())["spec"]["hosts"]
    client_node, server_node = hosts[1]["name"], hosts[2]["name"]
    pods = start_pods(run, client_node, server_node)
    targets = {"pod_to_pod": ("client-pod", pods["server-pod"]["status"]["podIP"]),
               "host_to_host": ("client-host", pods["server-host"]["status"]["podIP"])}
    rounds: dict[str, list[dict]] = {path: [] for path in targets}
    load_before = os.getloadavg()[0]
    for _ in range(ROUNDS):
        for path, (client, address) in targets.items():
            rounds[path].append(measure(run, client, address))
    server_cidr = nodes[server_node]["spec"]["podCIDR"]
    route = in_pod(run, "client-host", ROUTE_PROBE, server_cidr)
    mtu = run.kubectl("-n", NAMESPACE, "exec", "client-pod", "--", "cat",
                      "/sys/class/net/eth0/mtu").strip()
    return {
        "hosts": {"client": client_node, "server": server_node},
        "addresses": {path: address for path, (_, address) in targets.items()},
        "pod_route_to_server_node": {"cidr": server_cidr, **(route or {}),
                                     "mode": "vxlan" if route and route["dev"].startswith("provx")
                                     else "host-gw"},
        "pod_mtu": int(mtu),
        "transfer_seconds": TRANSFER_SECONDS, "round_trips": ROUND_TRIPS, "rounds": ROUNDS,
        **{path: summarize(found) for path, found in rounds.items()},
        "lab_up_and_create_cluster_seconds": round(bring_up, 1),
        # the machine's 1-minute load around the measurements: others' work shares the 2 cores
        "load_average_1m": {"before": round(load_before, 2),
                            "after": round(os.getloadavg()[0], 2)},
    }


def tear_down(run: Run) -> list[str]:
    problems = []
    spec = run.scratch / "cluster.yaml"
    for args in ((["delete", "cluster", "-f", str(spec)] if spec.exists() else None),
                 ["lab", "down", "--name", LAB]):
        if args is None:
            continue
        try:
            run.provisioner(*args)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            problems.append(str(error)[:2000])
    return problems


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pod-network-") as scratch:
        run = Run(Path(scratch))
        try:
            figures = bench(run)
        finally:
            problems = tear_down(run)
            for problem in problems:
                print(f"tear-down: {problem}", file=sys.stderr)
    record = {"benchmark": "pod_network",
              "note": "two worker lab hosts (systemd-nspawn) on one machine's bridge; Python "
                      "measurer in pods via kubectl exec; pod and host rounds alternate; compare "
                      "the paths' medians, not absolute figures",
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "kernel": platform.release()},
              **figures}
    out = ROOT / "benchmarks" / "results" / "pod_network.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
