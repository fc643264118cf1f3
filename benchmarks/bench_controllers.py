"""Measures kube-controller-manager on a Deployment of 1,000 replicas over simulated nodes.

- Node objects (default 100; 4 CPU, 32Gi, 110 pods each, Ready) stand in for kubelets; the real
  `kube-scheduler` process binds the pods when it is installed, else only creation is timed.
- `seconds_to_all_pods_created`: from the Deployment's creation to the 1,000th pod seen by a
  watch; `seconds_to_all_pods_bound`: to the 1,000th pod with a nodeName. `pods_created_per_s` is
  their ratio.
- Controller-manager RSS (MB) and CPU (% of one core) idle before the load (over 10 s, all
  controllers kubeadm runs, informers synced), under the load (from the Deployment's creation to
  the last binding), and idle again after it (10 s, starting 10 s after the last binding); the
  scheduler's under load as well.

Starts etcd + the API server (provisioner.dev.DevCluster) in a temporary directory; everything runs
on this machine, so the API server and etcd share its CPUs with the processes measured. Writes
benchmarks/results/controllers.json and prints it. Run with
`.venv/bin/python benchmarks/bench_controllers.py [--nodes N --replicas N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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
from provisioner.dev import DevCluster, free_port  # noqa: E402

NS = "bench-controllers"
IDLE_SECONDS = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def node(i: int) -> dict:
    cap = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    name = f"sim-{i:04d}"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": cap, "allocatable": cap, "conditions": [{"type": "Ready", "status": "True"}]}}


def deployment(replicas: int) -> dict:
    res = {"cpu": "10m", "memory": "16Mi"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big", "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}},
                                  "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                                           "resources": {"requests": res, "limits": res}}]}}}}


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS MB) of a process."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


async def idle(pid: int) -> tuple[float, float]:
    """(CPU %, RSS MB) over IDLE_SECONDS."""
    c0, _ = proc_sample(pid)
    await asyncio.sleep(IDLE_SECONDS)
    c1, rss = proc_sample(pid)
    return round(100 * (c1 - c0) / IDLE_SECONDS, 1), round(rss, 1)


async def watch_pods(client: Client, total: int, rv: str, created: list[float], bound: list[float],
                     want_bound: bool) -> None:
    seen: set[str] = set()
    on_node: set[str] = set()
    while len(seen) < total or (want_bound and len(on_node) < total):
        async for etype, obj in client.watch("", "v1", "pods", NS, resource_version=rv, timeoutSeconds="600"):
            if etype == "ERROR":
                raise RuntimeError(f"watch failed: {obj}")
            rv = obj["metadata"].get("resourceVersion", rv)
            name = obj["metadata"].get("name")
            if etype in ("ADDED", "MODIFIED") and name not in seen:
                seen.add(name)
                created.append(time.monotonic())
            if etype != "DELETED" and (obj.get("spec") or {}).get("nodeName") and name not in on_node:
                on_node.add(name)
                bound.append(time.monotonic())
            if len(seen) >= total and (not want_bound or len(on_node) >= total):
                return


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


async def bench(nodes: int, replicas: int, root: Path) -> dict:
    cluster = DevCluster(root / "cluster")
    cluster.start(timeout=60)
    has_scheduler = importlib.util.find_spec("provisioner.components.scheduler.main") is not None
    kcm = sched = None
    try:
        async with Client(kubeconfig.load(str(cluster.kubeconfig)), user_agent="bench-controllers") as client:
            await client.create("", "v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": NS}})
            sem = asyncio.Semaphore(32)

            async def add(obj: dict) -> None:
                async with sem:
                    await client.create("", "v1", "nodes", obj)
            await asyncio.gather(*(add(node(i)) for i in range(nodes)))
            pki = cluster.pki
            kcm = start([sys.executable, "-m", "provisioner.components.controllers.main",
                         "--kubeconfig", str(cluster.kubeconfig), "--leader-elect=false",
                         "--controllers=*,bootstrapsigner,tokencleaner", "--root-ca-file", str(pki / "ca.crt"),
                         "--cluster-signing-cert-file", str(pki / "ca.crt"),
                         "--cluster-signing-key-file", str(pki / "ca.key"),
                         "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"], root / "kcm.log")
            if has_scheduler:
                sched = start([sys.executable, "-c",
                               "from provisioner.components.scheduler.main import main; main()",
                               "--kubeconfig", str(cluster.kubeconfig), "--leader-elect=false",
                               "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"],
                              root / "scheduler.log")
            # settle: the informers list everything once the default ServiceAccount shows up
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sas = await client.list("", "v1", "serviceaccounts", NS)
                if sas.get("items"):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)
            kcm_idle_cpu, kcm_idle_rss = await idle(kcm.pid)
            rv = (await client.list("", "v1", "pods", NS))["metadata"]["resourceVersion"]
            created: list[float] = []
            bound: list[float] = []
            watcher = asyncio.ensure_future(watch_pods(client, replicas, rv, created, bound, has_scheduler))
            k0, _ = proc_sample(kcm.pid)
            s0 = proc_sample(sched.pid)[0] if sched else 0.0
            t0 = time.monotonic()
            await client.create("apps", "v1", "deployments", deployment(replicas), NS)
            await asyncio.wait_for(watcher, 1800)
            end = time.monotonic()
            k1, kcm_load_rss = proc_sample(kcm.pid)
            s1, sched_load_rss = proc_sample(sched.pid) if sched else (0.0, 0.0)
            await asyncio.sleep(IDLE_SECONDS)
            kcm_after_cpu, kcm_after_rss = await idle(kcm.pid)
            result = {
                "benchmark": f"Deployment of {replicas} replicas on {nodes} simulated nodes",
                "nodes": nodes, "replicas": replicas, "scheduler": "kube-scheduler process" if sched else "none",
                "seconds_to_all_pods_created": round(created[-1] - t0, 2),
                "pods_created_per_s": round(replicas / max(created[-1] - t0, 1e-6), 1),
                "seconds_to_first_pod": round(created[0] - t0, 3),
                "kcm_cpu_percent_idle_before": kcm_idle_cpu, "kcm_rss_mb_idle_before": kcm_idle_rss,
                "kcm_cpu_percent_under_load": round(100 * (k1 - k0) / (end - t0), 1),
                "kcm_rss_mb_under_load": round(kcm_load_rss, 1),
                "kcm_cpu_percent_idle_after": kcm_after_cpu, "kcm_rss_mb_idle_after": kcm_after_rss,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "note": "API server, etcd, the watch, the scheduler and the controller manager share this machine",
            }
            if sched:
                result.update({"seconds_to_all_pods_bound": round(bound[-1] - t0, 2),
                               "scheduler_cpu_percent_under_load": round(100 * (s1 - s0) / (end - t0), 1),
                               "scheduler_rss_mb_under_load": round(sched_load_rss, 1)})
            return result
    finally:
        for p in (kcm, sched):
            if p is not None:
                p.terminate()
                p.wait(30)
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-controllers-") as tmp:
        result = asyncio.run(bench(args.nodes, args.replicas, Path(tmp)))
    out = ROOT / "benchmarks" / "results" / "controllers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
