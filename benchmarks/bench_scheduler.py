"""Measures kube-scheduler's throughput as Kubernetes' scheduler_perf does (SchedulingBasic): pods
bound per second with the pods created ahead of time.

- 1,000 Node objects (4 CPU, 32Gi, 110 pods: scheduler_perf's node-default) and 3,000 pending pods
  (100m CPU, 500Mi: its pod-default) are created through the API server before the scheduler starts.
- Throughput: pods bound per second, counted from a pod watch; `average_pods_per_s` is bound pods
  over the time from the first to the last binding (scheduler_perf's average), `end_to_end_pods_per_s`
  includes the scheduler's start and initial list. Anchor: kube-scheduler's CI floor for
  SchedulingBasic 5000Nodes_10000Pods is 270 pods/s.
- Scheduler process RSS (MB) and CPU (% of one core) idle (measured over 10 s, starting 10 s after
  everything is bound, once queued events are written) and under that load (over the scheduling
  run), plus the peak RSS.
- Where the API server's time goes: CPU milliseconds of the API server, etcd and the scheduler per
  bound pod over the scheduling run (unlike pods/s, CPU time per pod barely moves with other load on
  the machine); `scheduled_events_while_binding`, how many Scheduled Events were written before the
  last binding (the scheduler lets them wait behind bindings); and `api_write_costs`, the API server's
  and etcd's CPU per write measured apart once the scheduler has stopped: WRITE_SAMPLE more pods
  bound straight through pods/binding (32 at a time, as the scheduler does) and WRITE_SAMPLE
  Scheduled-style Events written one at a time (as the event recorder does).
- `algorithm_only_pods_per_s`: the same nodes and pods through the scheduler's filter/score/assume
  path in this process, without the API server (what the scheduler could do if binding were free);
  it separates the scheduler's own cost from the API server's write rate.

Starts etcd + the API server (provisioner.dev.DevCluster) in a temporary directory and the real
`kube-scheduler` process; everything runs on this machine, so the API server shares its CPUs.
Writes benchmarks/results/scheduler.json and prints it. Run with
`.venv/bin/python benchmarks/bench_scheduler.py [--nodes N --pods N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.components.api import kubeconfig  # noqa: E402
from provisioner.components.api.client import Client  # noqa: E402
from provisioner.components.api.events import EventRecorder  # noqa: E402
from provisioner.dev import DevCluster, free_port  # noqa: E402

NS = "bench-scheduler"
CONCURRENCY = 32
IDLE_SECONDS = 10
ANCHOR = 270.0
WRITE_SAMPLE = 500
CLK_TCK = os.sysconf("SC_CLK_TCK")


def node(i: int) -> dict:
    cap = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    name = f"node-{i:05d}"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": cap, "allocatable": cap, "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(i: int) -> dict:
    res = {"cpu": "100m", "memory": "500Mi"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i:05d}", "namespace": NS},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                     "ports": [{"containerPort": 80}],
                                     "resources": {"requests": res, "limits": res}}]}}


async def create_all(client: Client, plural: str, objs: list[dict], ns: str | None) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(obj: dict) -> None:
        async with sem:
            await client.create("", "v1", plural, obj, ns)
    await asyncio.gather(*(one(o) for o in objs))


def proc_sample(pid: int) -> tuple[float, float, float]:
    """(CPU seconds used so far, RSS MB, peak RSS MB) of a process."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, rss, hwm


async def count_bound(client: Client, total: int, rv: str, stamps: list[float]) -> None:
    bound: set[str] = set()
    while len(bound) < total:
        async for etype, obj in client.watch("", "v1", "pods", NS, resource_version=rv, timeoutSeconds="600"):
            if etype == "ERROR":
                raise RuntimeError(f"watch failed: {obj}")
            rv = obj["metadata"].get("resourceVersion", rv)
            name = obj["metadata"].get("name")
            if etype != "BOOKMARK" and (obj.get("spec") or {}).get("nodeName") and name not in bound:
                bound.add(name)
                stamps.append(time.monotonic())
                if len(bound) >= total:
                    return


async def scheduled_events(client: Client) -> int:
    events = await client.list("", "v1", "events", NS)
    return sum(1 for e in events.get("items") or [] if e.get("reason") == "Scheduled")


async def write_costs(client: Client, cluster: DevCluster) -> dict:
    """API server and etcd CPU per binding and per Event, each measured alone (no scheduler)."""
    def cpu() -> list[float]:
        return [proc_sample(p.pid)[0] for p in cluster.procs]

    def per_op(before: list[float], n: int) -> dict:
        etcd, api = (1000 * (after - was) / n for after, was in zip(cpu(), before))
        return {"apiserver_cpu_ms": round(api, 2), "etcd_cpu_ms": round(etcd, 2)}

    extra = [dict(pod(i), metadata={"name": f"extra-{i:05d}", "namespace": NS}) for i in range(WRITE_SAMPLE)]
    await create_all(client, "pods", extra, NS)
    created = [p for p in (await client.list("", "v1", "pods", NS))["items"] if p["metadata"]["name"]
               .startswith("extra-")]
    sem = asyncio.Semaphore(32)

    async def bind(p: dict) -> None:
        async with sem:
            await client.bind(p, "node-00000")
    before = cpu()
    await asyncio.gather(*(bind(p) for p in created))
    binding = per_op(before, len(created))
    recorder = EventRecorder(client, "bench-scheduler")
    before = cpu()
    for p in created:
        recorder.record_event(p, "Normal", "Scheduled", f"Successfully assigned {NS}/{p['metadata']['name']}")
        await recorder.flush()
    event = per_op(before, len(created))
    await recorder.close()
    return {"binding": binding, "event": event, "sample": len(created)}


def algorithm_only(nodes: int, pods: int) -> float:
    from provisioner.components.scheduler.config import SchedulerConfig
    from provisioner.components.scheduler.scheduler import Scheduler

    s = Scheduler(client=None, config=SchedulerConfig())
    for i in range(nodes):
        s._node_changed(node(i))
    profile = s.profiles["default-scheduler"]
    start = time.perf_counter()
    for i in range(pods):
        p = pod(i)
        s.cache.assume(p, s.find_node(profile, p))
    return round(pods / (time.perf_counter() - start), 1)


async def bench(nodes: int, pods: int, root: Path) -> dict:
    load_before = os.getloadavg()[0]  # other work on the machine shows in every figure: record it
    cluster = DevCluster(root / "cluster")
    cluster.start(timeout=60)
    sched = None
    try:
        async with Client(kubeconfig.load(str(cluster.kubeconfig)), user_agent="bench-scheduler") as client:
            t0 = time.monotonic()
            await client.create("", "v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": NS}})
            await create_all(client, "nodes", [node(i) for i in range(nodes)], None)
            await create_all(client, "pods", [pod(i) for i in range(pods)], NS)
            setup_s = time.monotonic() - t0
            rv = (await client.list("", "v1", "pods", NS, limit="1"))["metadata"]["resourceVersion"]
            stamps: list[float] = []
            watcher = asyncio.ensure_future(count_bound(client, pods, rv, stamps))
            log = open(root / "scheduler.log", "wb")
            start = time.monotonic()
            servers_before = [proc_sample(p.pid)[0] for p in cluster.procs]
            sched = subprocess.Popen([sys.executable, "-c", "from provisioner.components.scheduler.main import main; main()",
                                      "--kubeconfig", str(cluster.kubeconfig), "--leader-elect=false",
                                      "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"],
                                     stdout=log, stderr=subprocess.STDOUT)
            await asyncio.wait_for(watcher, 1800)
            end = time.monotonic()
            events_while_binding = await scheduled_events(client)
            cpu_load, rss_load, _ = proc_sample(sched.pid)
            servers = dict(zip(("etcd", "apiserver"), (proc_sample(p.pid)[0] - b for p, b in
                                                       zip(cluster.procs, servers_before))))
            await asyncio.sleep(IDLE_SECONDS)  # let the event writer catch up
            cpu_idle_start, _, _ = proc_sample(sched.pid)
            await asyncio.sleep(IDLE_SECONDS)
            cpu_idle_end, rss_idle, peak = proc_sample(sched.pid)
            sched.terminate()
            sched.wait(30)
            costs = await write_costs(client, cluster)
            first, last = stamps[0], stamps[-1]
            per_second: dict[int, int] = {}
            for s in stamps:
                per_second[int(s - first)] = per_second.get(int(s - first), 0) + 1
            window = max(last - first, 1e-6)
            return {
                "benchmark": "scheduler SchedulingBasic (scheduler_perf style, pods created ahead)",
                "nodes": nodes, "pods": pods, "setup_seconds": round(setup_s, 1),
                "average_pods_per_s": round(pods / window, 1),
                "end_to_end_pods_per_s": round(pods / (end - start), 1),
                "seconds_to_first_binding": round(first - start, 2),
                "seconds_scheduling": round(window, 2),
                "per_second_min": min(per_second.values()), "per_second_max": max(per_second.values()),
                "per_second": [per_second.get(i, 0) for i in range(int(window) + 1)],
                "anchor_pods_per_s": ANCHOR,
                "anchor": "kube-scheduler CI floor, SchedulingBasic 5000Nodes_10000Pods",
                "scheduler_cpu_percent_under_load": round(100 * cpu_load / (end - start), 1),
                "scheduler_rss_mb_under_load": round(rss_load, 1),
                "scheduler_cpu_percent_idle": round(100 * (cpu_idle_end - cpu_idle_start) / IDLE_SECONDS, 1),
                # CPU time per bound pod barely moves with other load on the machine, unlike pods/s
                "apiserver_cpu_ms_per_pod": round(1000 * servers["apiserver"] / pods, 2),
                "etcd_cpu_ms_per_pod": round(1000 * servers["etcd"] / pods, 2),
                "scheduler_cpu_ms_per_pod": round(1000 * cpu_load / pods, 2),
                "scheduled_events_while_binding": events_while_binding,
                "api_write_costs": costs,
                "algorithm_only_pods_per_s": algorithm_only(nodes, pods),
                "scheduler_rss_mb_idle": round(rss_idle, 1),
                "scheduler_peak_rss_mb": round(peak, 1),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]},
                "note": "API server, etcd, the watch counting bindings and the scheduler share this machine",
            }
    finally:
        if sched is not None:
            sched.terminate()
            sched.wait(30)
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        result = asyncio.run(bench(args.nodes, args.pods, Path(tmp)))
    out = ROOT / "benchmarks" / "results" / "scheduler.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
