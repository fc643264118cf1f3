"""kubelet: node-pressure eviction with the evictionHard thresholds.

Every 10 s (kubelet's housekeeping period) the signals memory.available, nodefs.available,
nodefs.inodesFree and the PID count are compared with their thresholds; while one is crossed,
one pod per round is evicted: BestEffort before Burstable before Guaranteed, lower priority
first. Static pods and pods of critical priority (>= 2,000,000,000) are never evicted. An
evicted pod's containers are killed, its status is phase Failed, reason Evicted, with kubelet's
message and a DisruptionTarget condition; the pod object stays, as upstream.
"""

from __future__ import annotations

import asyncio
import logging

from . import hostinfo
from .node import threshold_bytes
from .podspec import qos_class

log = logging.getLogger("kubelet.eviction")
HOUSEKEEPING_SECONDS = 10
CRITICAL_PRIORITY = 2_000_000_000
QOS_RANK = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}


def crossed(eviction_hard: dict, root_dir: str) -> list[tuple[str, str, str]]:
    """(resource, threshold, available) for each crossed hard threshold."""
    out = []
    memory = hostinfo.meminfo()
    available = memory.get("MemAvailable", 0)
    limit = eviction_hard.get("memory.available")
    if limit and available < threshold_bytes(limit, memory.get("MemTotal", 0)):
        out.append(("memory", limit, f"{available // 1024}Ki"))
    total, free, inodes, free_inodes = hostinfo.disk(root_dir)
    limit = eviction_hard.get("nodefs.available")
    if limit and free < threshold_bytes(limit, total):
        out.append(("ephemeral-storage", limit, f"{free // 1024}Ki"))
    limit = eviction_hard.get("nodefs.inodesFree")
    if limit and inodes and free_inodes < threshold_bytes(limit, inodes):
        out.append(("inodes", limit, str(free_inodes)))
    limit = eviction_hard.get("pid.available")
    if limit:
        free_pids = hostinfo.pid_max() - hostinfo.running_pids()
        if free_pids < threshold_bytes(limit, hostinfo.pid_max()):
            out.append(("pids", limit, str(free_pids)))
    return out


def rank(workers, static_uids: set[str]) -> list:
    """The pods that may be evicted, the first to go first."""
    candidates = [w for w in workers if w.uid not in static_uids and not w.done and
                  (w.pod["spec"].get("priority") or 0) < CRITICAL_PRIORITY and
                  not w.pod["metadata"].get("deletionTimestamp") and w.eviction is None]
    return sorted(candidates, key=lambda w: (QOS_RANK[qos_class(w.pod)],
                                             w.pod["spec"].get("priority") or 0))


async def eviction_loop(kubelet, eviction_hard: dict) -> None:
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            signals = await asyncio.to_thread(crossed, eviction_hard, kubelet.root_dir)
        except OSError as error:
            log.warning("eviction signals not read: %s", error)
            continue
        if not signals:
            continue
        victims = rank(list(kubelet.workers.values()), set(kubelet.static_pods))
        if not victims:
            continue
        resource, threshold, available = signals[0]
        message = (f"The node was low on resource: {resource}. Threshold quantity: {threshold}, "
                   f"available: {available}. ")
        victim = victims[0]
        log.warning("evicting pod %s: %s", victim.key, message)
        victim.evict(message)
