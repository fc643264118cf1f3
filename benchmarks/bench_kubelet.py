"""Measures the kubelet on a one-machine cluster (`provisioner dev cluster`'s DevNodeCluster).

- Pod startup latency, as sig-scalability's SLO counts it: from just before the create request
  is sent to the watch event showing every container running, with the image present; PODS
  pods bound to the node (spec.nodeName, so the scheduler is not measured), created one after
  the other without waiting; p50, p99 and max. The SLO is p99 <= 5 s; our goal is 2 s.
- The kubelet's RSS idle (node registered, no pods) and with PODS pods running.
- What each pod costs on the node beyond its workload: the RSS and PSS of its monitors (one per container,
  the sandbox's included) and of its pause process.

Needs root (containers). Writes benchmarks/results/kubelet.json and prints it. Run with
`sudo .venv/bin/python benchmarks/bench_kubelet.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.dev import DevNodeCluster  # noqa: E402

PODS = int(os.environ.get("BENCH_PODS", 30))
NS = "default"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as source:
        for line in source:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as source:
        for line in source:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def monitor_pids(containers: Path) -> list[int]:
    """The per-container monitors the runtime keeps, as its state files name them."""
    pids = []
    for state in containers.glob("*/state.json"):
        pid = json.loads(state.read_text()).get("shim_pid")
        if pid and os.path.exists(f"/proc/{pid}"):
            pids.append(pid)
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as source:
        fields = source.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_matching(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                if text.encode() in source.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox:latest",
                                     "command": ["sleep", "3600"]}]}}


async def startup_latencies(cluster: DevNodeCluster) -> list[float]:
    pki = cluster.api.pki
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    sent: dict[str, float] = {}
    running: dict[str, float] = {}
    done = asyncio.Event()
    async with aiohttp.ClientSession(base_url=cluster.api.server,
                                     connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        listing = await (await session.get(f"/api/v1/namespaces/{NS}/pods")).json()
        version = listing["metadata"]["resourceVersion"]

        async def watch() -> None:
            async with session.get(f"/api/v1/namespaces/{NS}/pods",
                                   params={"watch": "true", "resourceVersion": version},
                                   timeout=aiohttp.ClientTimeout(total=None)) as response:
                async for line in response.content:
                    event = json.loads(line)
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    statuses = (obj.get("status") or {}).get("containerStatuses") or []
                    if name not in running and statuses and all("running" in (s.get("state") or {})
                                                                 for s in statuses):
                        running[name] = time.monotonic()
                        if len(running) == PODS:
                            done.set()
                            return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)            # the watch is open before the first create
        for index in range(PODS):
            name = f"bench-{index}"
            sent[name] = time.monotonic()
            async with session.post(f"/api/v1/namespaces/{NS}/pods",
                                    json=pod(name, cluster.node_name)) as response:
                assert response.status == 201, await response.text()
        await asyncio.wait_for(done.wait(), 300)
        watcher.cancel()
    return sorted(running[name] - sent[name] for name in sent)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    keep = os.environ.get("BENCH_KEEP")            # a directory: keep logs there to read
    with tempfile.TemporaryDirectory(prefix="bench-kubelet-") as tmp:
        tmp = keep or tmp
        cluster = DevNodeCluster(Path(tmp), node_name="bench-node", log=lambda line: None)
        cluster.start()
        try:
            kubelet_pid = cluster.procs["kubelet"].pid
            time.sleep(5)                   # past registration's first status writes
            idle = rss_kib(kubelet_pid)
            runtime_pid = cluster.procs["runtime"].pid
            cpu_before = {pid: cpu_seconds(pid) for pid in (kubelet_pid, runtime_pid)}
            latencies = asyncio.run(startup_latencies(cluster))
            cpu = {pid: round(cpu_seconds(pid) - cpu_before[pid], 2) for pid in cpu_before}
            time.sleep(5)
            busy = rss_kib(kubelet_pid)
            runtime_root = str(cluster.root / "runtime" / "root")
            shims = monitor_pids(Path(runtime_root) / "containers")
            shim_rss = [rss_kib(pid) for pid in shims]
            shim_pss = [pss_kib(pid) for pid in shims]
            pause = [pid for pid in processes_matching("2147483647")
                     if os.path.exists(f"/proc/{pid}")]
            pause_rss = [rss_kib(pid) for pid in pause]
        finally:
            cluster.stop()
    result = {
        "benchmark": "kubelet",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    # a shared machine: other work running beside the benchmark slows every figure
                    "load_average_1m_at_end": round(os.getloadavg()[0], 1)},
        "pods": PODS,
        "pod_startup_seconds": {"p50": round(statistics.median(latencies), 3),
                                "p99": round(percentile(latencies, 0.99), 3),
                                "max": round(max(latencies), 3),
                                "slo_p99": 5.0, "goal_p99": 2.0},
        # CPU spent while the pods started (the shims' own start-up is not in either figure)
        "cpu_seconds_during_startup": {"kubelet": cpu[kubelet_pid],
                                       "runtime_daemon": cpu[runtime_pid]},
        "kubelet_rss_mib": {"idle": round(idle / 1024, 1), f"with_{PODS}_pods": round(busy / 1024, 1)},
        "per_pod_overhead_mib": {
            "shims": round(sum(shim_rss) / 1024 / PODS, 1),
            "shim_each": round(statistics.median(shim_rss) / 1024, 1) if shim_rss else None,
            # monitors are forked from the runtime's warm monitor server and share its pages:
            # their proportional set size is what each one costs the node
            "shims_pss": round(sum(shim_pss) / 1024 / PODS, 1),
            "shim_each_pss": round(statistics.median(shim_pss) / 1024, 2) if shim_pss else None,
            "pause_process": round(statistics.median(pause_rss) / 1024, 2) if pause_rss else None},
    }
    out = ROOT / "benchmarks" / "results" / "kubelet.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
