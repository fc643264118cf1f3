"""kubelet: /metrics/resource, the CPU and memory figures metrics-server scrapes.

The kubelet's resource metrics endpoint in Prometheus text format with the kubelet's names:
node_cpu_usage_seconds_total and node_memory_working_set_bytes for the node (/proc/stat's busy
time, /proc/meminfo's total less available), and container_cpu_usage_seconds_total,
container_memory_working_set_bytes, container_start_time_seconds per running container of this
node's pods (labels container, namespace, pod), summed per pod into pod_cpu_usage_seconds_total
and pod_memory_working_set_bytes. Each sample carries the time it was read (ms since the epoch),
which is what metrics-server divides CPU deltas by. Container figures are read from the cgroup of
the container's process (its pid from the runtime's inspect). Served by server.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from typing import Any

from . import hostinfo

FAMILIES = (
    ("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds"),
    ("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes"),
    ("container_cpu_usage_seconds_total", "counter",
     "Cumulative cpu time consumed by the container in core-seconds"),
    ("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes"),
    ("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds"),
    ("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds"),
    ("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes"),
    ("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
)
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def node_cpu_seconds(stat_text: str) -> float:
    """Busy CPU time of the whole machine from /proc/stat's first line (all but idle and iowait)."""
    fields = stat_text.splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields[:8]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks) - idle) / USER_HZ


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _start_seconds(started_at: str | None) -> float | None:
    if not started_at:
        return None
    try:
        return dt.datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _v1_mounts(mounts_text: str) -> dict[str, str]:
    """cgroup v1 controller -> its mount point, from /proc/mounts."""
    out: dict[str, str] = {}
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "cgroup":
            for option in parts[3].split(","):
                out.setdefault(option, parts[1])
    return out


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _stat_value(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def cgroup_usage(pid: int, root: str = "/sys/fs/cgroup") -> dict:
    """The cgroup of process `pid`: {"cpu": core-seconds used, "memory": working set bytes}
    (usage less inactive file pages, as cAdvisor counts it); cgroup v2 or v1."""
    lines = [line.split(":", 2) for line in _read(f"/proc/{pid}/cgroup").splitlines() if line.count(":") >= 2]
    if os.path.exists(os.path.join(root, "cgroup.controllers")):  # v2: one tree
        path = root + next(p for h, _, p in lines if h == "0")
        cpu = _stat_value(_read(f"{path}/cpu.stat"), "usage_usec") / 1e6
        usage = int(_read(f"{path}/memory.current"))
        inactive = _stat_value(_read(f"{path}/memory.stat"), "inactive_file")
    else:
        mounts = _v1_mounts(_read("/proc/mounts"))
        by_controller = {c: p for _, controllers, p in lines for c in controllers.split(",")}
        cpu_dir = mounts["cpuacct"] + by_controller["cpuacct"]
        memory_dir = mounts["memory"] + by_controller["memory"]
        cpu = int(_read(f"{cpu_dir}/cpuacct.usage")) / 1e9
        usage = int(_read(f"{memory_dir}/memory.usage_in_bytes"))
        inactive = _stat_value(_read(f"{memory_dir}/memory.stat"), "total_inactive_file")
    return {"cpu": cpu, "memory": max(usage - inactive, 0)}


async def _usage(kubelet: Any, container_id: str) -> dict:
    pid = (await kubelet.runtime.call("inspect", container_id)).get("State", {}).get("Pid") or 0
    if not pid:
        raise LookupError(f"container {container_id} has no process")
    return await asyncio.to_thread(cgroup_usage, pid)


async def container_samples(kubelet: Any) -> tuple[list[tuple[dict, Any, dict]], bool]:
    """(pod, container view, {"cpu", "memory"}) per running container of this node's pods, and
    whether any container's figures could not be read."""
    wanted = []
    for worker in list(kubelet.workers.values()):
        for c in kubelet.snapshot.containers.get(worker.uid, []):
            if c.state == "running":
                wanted.append((worker.pod, c))
    results = await asyncio.gather(*(_usage(kubelet, c.id) for _, c in wanted), return_exceptions=True)
    out, failed = [], False
    for (pod, c), usage in zip(wanted, results):
        if isinstance(usage, BaseException):
            failed = True  # gone between the relist and now, or the runtime restarting
            continue
        out.append((pod, c, usage))
    return out, failed


def render(node: tuple[float, int], containers: list[tuple[dict, Any, dict]], failed: bool,
           now_ms: int) -> str:
    """The exposition text: node (cpu seconds, working set bytes), then containers and pods."""
    rows: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
    rows["node_cpu_usage_seconds_total"].append(f"node_cpu_usage_seconds_total {node[0]:.9f} {now_ms}")
    rows["node_memory_working_set_bytes"].append(f"node_memory_working_set_bytes {node[1]} {now_ms}")
    pods: dict[tuple[str, str], list[float]] = {}
    for pod, c, usage in containers:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        labels = _labels(container=c.name, namespace=ns, pod=name)
        cpu, memory = usage["cpu"], int(usage["memory"])
        rows["container_cpu_usage_seconds_total"].append(
            f"container_cpu_usage_seconds_total{labels} {cpu:.9f} {now_ms}")
        rows["container_memory_working_set_bytes"].append(
            f"container_memory_working_set_bytes{labels} {memory} {now_ms}")
        started = _start_seconds(c.started_at)
        if started is not None:
            rows["container_start_time_seconds"].append(
                f"container_start_time_seconds{labels} {started:.3f} {now_ms}")
        total = pods.setdefault((ns, name), [0.0, 0])
        total[0] += cpu
        total[1] += memory
    for (ns, name), (cpu, memory) in pods.items():
        labels = _labels(namespace=ns, pod=name)
        rows["pod_cpu_usage_seconds_total"].append(f"pod_cpu_usage_seconds_total{labels} {cpu:.9f} {now_ms}")
        rows["pod_memory_working_set_bytes"].append(f"pod_memory_working_set_bytes{labels} {int(memory)} {now_ms}")
    rows["resource_scrape_error"].append(f"resource_scrape_error {1 if failed else 0}")
    lines = []
    for name, kind, help_text in FAMILIES:
        lines += [f"# HELP {name} [STABLE] {help_text}", f"# TYPE {name} {kind}", *rows[name]]
    return "\n".join(lines) + "\n"


async def text(kubelet: Any) -> str:
    containers, failed = await container_samples(kubelet)
    memory = hostinfo.meminfo()
    with open("/proc/stat") as fh:
        cpu = node_cpu_seconds(fh.read())
    working_set = memory.get("MemTotal", 0) - memory.get("MemAvailable", 0)
    return render((cpu, working_set), containers, failed, int(time.time() * 1000))
