"""kubelet: QoS and pod cgroups, laid out as kubelet's cgroupfs driver lays them out.

With cgroupsPerQOS (the default) every pod gets a cgroup under <cgroupRoot>/kubepods:
Guaranteed pods directly (kubepods/pod<uid>), Burstable ones under kubepods/burstable, BestEffort
ones under kubepods/besteffort. The pod's group carries the pod's sums (kubelet's
ResourceConfigForPod): CPU shares from its CPU requests (MinShares 2 for BestEffort), a CFS quota
from its CPU limits and a memory limit from its memory limits when every container declares one
(always for Guaranteed). The runtime puts the pod's sandbox and containers below it (the pod's
cgroup_parent), each container with its own shares (from its request) and limits. The burstable
group's shares follow the sum of its pods' requests; besteffort keeps the minimum. (The
container's own shares come with its create options, podspec.limits.)

Shares are cgroup v1 cpu.shares; on cgroup v2 the runtime's cgroups module writes cpu.weight
from them with the kubelet's linear map. The pure functions are tested without cgroups.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os

from ..api.quantity import milli, whole
from ..runtime.container import cgroups
from .config import ConfigError
from .podspec import MIN_SHARES, milli_cpu_to_shares, qos_class

log = logging.getLogger("kubelet.cgroups")
QUOTA_PERIOD, MIN_QUOTA = 100000, 1000
QOS_DIRS = {"Guaranteed": "", "Burstable": "burstable", "BestEffort": "besteffort"}
# errors that mean "no cgroups to manage here" (read-only, absent, not ours): run pods without
_UNAVAILABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENODEV}


def milli_cpu_to_quota(milli_cpu: int) -> int:
    """kubelet's MilliCPUToQuota over the 100 ms period, at least 1 ms."""
    return max(milli_cpu * QUOTA_PERIOD // 1000, MIN_QUOTA)


def _amounts(container: dict, kind: str) -> dict[str, int]:
    """A container's cpu (millicores) and memory (bytes) requests or limits; a request left out
    where a limit is given is the limit (as the API server defaults it)."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    given = limits if kind == "limits" else {**limits, **(resources.get("requests") or {})}
    out = {}
    if given.get("cpu") is not None:
        out["cpu"] = milli(given["cpu"])
    if given.get("memory") is not None:
        out["memory"] = whole(given["memory"])
    return out


def pod_amounts(pod: dict, kind: str) -> dict[str, int]:
    """kubelet's PodRequests/PodLimits: the containers' sum, at least the largest init
    container's (they run one at a time, before the others), plus spec.overhead."""
    spec = pod["spec"]
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for name, value in _amounts(container, kind).items():
            total[name] = total.get(name, 0) + value
    for container in spec.get("initContainers") or []:
        for name, value in _amounts(container, kind).items():
            total[name] = max(total.get(name, 0), value)
    for name, value in _amounts({"resources": {"limits": spec.get("overhead") or {}}},
                                "limits").items():
        if name in total or kind == "requests":
            total[name] = total.get(name, 0) + value
    return total


def pod_resources(pod: dict) -> dict:
    """The pod cgroup's settings, as kubelet's ResourceConfigForPod: {"cpu_shares", and
    "cpu_quota" / "memory" where the pod's QoS and its containers' limits call for them}."""
    qos = qos_class(pod)
    if qos == "BestEffort":
        return {"cpu_shares": MIN_SHARES}
    requests, limits = pod_amounts(pod, "requests"), pod_amounts(pod, "limits")
    containers = pod["spec"].get("containers") or []
    declared = {name: all(_amounts(c, "limits").get(name) for c in containers)
                for name in ("cpu", "memory")}
    out: dict = {"cpu_shares": milli_cpu_to_shares(requests.get("cpu", 0))}
    if (qos == "Guaranteed" or declared["cpu"]) and limits.get("cpu"):
        out["cpu_quota"] = milli_cpu_to_quota(limits["cpu"])
    if (qos == "Guaranteed" or declared["memory"]) and limits.get("memory"):
        out["memory"] = limits["memory"]
    return out


def pod_group(root: str, pod: dict) -> str:
    """The pod's cgroup relative to the hierarchy root: <root>/kubepods[/<qos>]/pod<uid>."""
    qos_dir = QOS_DIRS[qos_class(pod)]
    parts = [root.strip("/"), "kubepods", qos_dir, f"pod{pod['metadata']['uid']}"]
    return "/".join(part for part in parts if part)


class PodCgroups:
    """Creates, limits and removes the QoS and pod cgroups (cgroupDriver cgroupfs)."""

    def __init__(self, config: dict):
        driver = config.get("cgroupDriver") or "cgroupfs"
        if driver != "cgroupfs":
            raise ConfigError(f"field \"cgroupDriver\": {driver!r} is not supported by this "
                              "kubelet; use cgroupfs (the runtime manages cgroup files itself)")
        self.enabled = config.get("cgroupsPerQOS", True) is not False
        self.root = (config.get("cgroupRoot") or "/").strip("/")
        self.kubepods = "/".join(p for p in (self.root, "kubepods") if p)
        self.available = self.enabled
        self.burstable_requests: dict[str, int] = {}     # uid -> its CPU request (millicores)

    async def setup(self, cpus: int) -> None:
        """The top of the hierarchy: kubepods (the node's CPU as shares), burstable, besteffort."""
        if not self.available:
            return
        try:
            await asyncio.to_thread(cgroups.ensure_group, self.kubepods, None, None,
                                    milli_cpu_to_shares(cpus * 1000))
            await asyncio.to_thread(cgroups.ensure_group, f"{self.kubepods}/besteffort", None,
                                    None, MIN_SHARES)
            await asyncio.to_thread(cgroups.ensure_group, f"{self.kubepods}/burstable", None,
                                    None, self._burstable_shares())
        except (cgroups.CgroupUnavailable, OSError) as error:
            self._unavailable(error)

    def _unavailable(self, error: Exception) -> None:
        if isinstance(error, OSError) and error.errno not in _UNAVAILABLE:
            raise error
        self.available = False
        log.warning("pods run without QoS and pod cgroups (no writable cgroup hierarchy: %s)",
                    error)

    def _burstable_shares(self) -> int:
        return milli_cpu_to_shares(sum(self.burstable_requests.values()))

    async def ensure_pod(self, pod: dict) -> str | None:
        """The pod's cgroup with its limits, made before its sandbox; the group's path relative
        to the hierarchy root (the runtime's cgroup parent), or None without pod cgroups."""
        if not self.available:
            return None
        group = pod_group(self.root, pod)
        settings = pod_resources(pod)
        quota = settings.get("cpu_quota")
        try:
            if qos_class(pod) == "Burstable":
                uid = pod["metadata"]["uid"]
                self.burstable_requests[uid] = pod_amounts(pod, "requests").get("cpu", 0)
                await asyncio.to_thread(cgroups.ensure_group, f"{self.kubepods}/burstable",
                                        None, None, self._burstable_shares())
            await asyncio.to_thread(cgroups.ensure_group, group, settings.get("memory"),
                                    quota / QUOTA_PERIOD if quota else None,
                                    settings["cpu_shares"])
        except (cgroups.CgroupUnavailable, OSError) as error:   # a refused limit propagates
            self._unavailable(error)
            return None
        return group

    async def remove_pod(self, uid: str) -> None:
        """Remove the pod's cgroup (whatever its QoS was) once its containers are gone."""
        was_burstable = self.burstable_requests.pop(uid, None) is not None
        if not self.available:
            return
        for qos_dir in QOS_DIRS.values():
            group = "/".join(p for p in (self.kubepods, qos_dir, f"pod{uid}") if p)
            try:
                await asyncio.to_thread(cgroups.remove_group, group)
            except OSError as error:
                log.warning("pod cgroup %s not removed: %s", group, error)
        if was_burstable:         # the burstable group's shares follow its pods' requests
            try:
                await asyncio.to_thread(cgroups.ensure_group, f"{self.kubepods}/burstable",
                                        None, None, self._burstable_shares())
            except (cgroups.CgroupSetupFailed, OSError) as error:
                log.warning("burstable cgroup shares not updated: %s", error)

    def pod_uids_on_host(self) -> set[str]:
        """The uids of the empty pod cgroups that exist (to remove those of pods long gone; a
        group holding containers' groups is in use)."""
        if not self.available:
            return set()
        top = _cpu_top()
        found = set()
        for qos_dir in QOS_DIRS.values():
            directory = os.path.join(top, self.kubepods, qos_dir)
            try:
                names = [n for n in os.listdir(directory) if n.startswith("pod")]
                found |= {name[3:] for name in names if not any(
                    entry.is_dir() for entry in os.scandir(os.path.join(directory, name)))}
            except OSError:
                continue          # absent, or removed meanwhile
        return found


def _cpu_top() -> str:
    """Where the cpu controller's hierarchy is mounted (v2: the unified root)."""
    if cgroups.mode() == "v1":
        return os.path.join(cgroups.CGROUP_ROOT, "cpu")
    return cgroups.CGROUP_ROOT
