"""kubelet: the Node object: registration, status (capacity, conditions, images) and the Lease.

Registration creates the Node (or adopts an existing one); status is written when it changes and
otherwise every nodeStatusReportFrequency; the Lease in kube-node-lease is renewed every 10 s
(retries back off from 200 ms to 7 s). If the Node is deleted, the next status write registers it
again. Conditions carry kubelet's reasons (KubeletReady, KubeletHasSufficientMemory, ...).
Ready is False while the runtime cannot network pods (a CNI pod network not installed yet), in
kubelet's words; until the node is Ready its status is checked every second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from ..api.client import ApiStatusError, Client
from ..api.quantity import parse as parse_quantity
from . import hostinfo

log = logging.getLogger("kubelet.node")
LEASE_RENEW_SECONDS = 10
NOT_READY_UPDATE_SECONDS = 1.0   # status updates while the node is not Ready yet


def now_micro() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# type -> (reason when fine, message when fine, reason under pressure, message under pressure)
PRESSURE_CONDITIONS = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available",
                       "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                     "KubeletHasDiskPressure", "kubelet has disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available",
                    "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}


@dataclass
class NodeSettings:
    name: str
    ip: str
    root_dir: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    max_pods: int = 110
    eviction_hard: dict[str, str] = field(default_factory=dict)
    report_seconds: float = 300
    update_seconds: float = 10


def network_not_ready(network: dict) -> str:
    """The Ready condition's message while the runtime cannot network pods (a CNI network not
    installed yet), in kubelet's words; "" when it can."""
    if network.get("ready", True):
        return ""
    return (f"container runtime network not ready: NetworkReady=false "
            f"reason:{network.get('reason') or 'NetworkPluginNotReady'} "
            f"message:{network.get('message') or ''}")


def threshold_bytes(value: str, total: int) -> int:
    """An eviction threshold ("100Mi" or "10%") in bytes of `total`."""
    if str(value).endswith("%"):
        return int(total * float(value[:-1]) / 100)
    return int(parse_quantity(value))


def pressures(settings: NodeSettings) -> dict[str, bool]:
    """Which of memory, disk and PIDs is past its evictionHard threshold now."""
    memory = hostinfo.meminfo()
    total_disk, free_disk, inodes, free_inodes = hostinfo.disk(settings.root_dir)
    hard = settings.eviction_hard
    memory_low = memory.get("MemAvailable", 0) < threshold_bytes(
        hard.get("memory.available", "100Mi"), memory.get("MemTotal", 0))
    disk_low = free_disk < threshold_bytes(hard.get("nodefs.available", "10%"), total_disk) or \
        (inodes > 0 and free_inodes < threshold_bytes(hard.get("nodefs.inodesFree", "5%"), inodes))
    pids_low = hostinfo.running_pids() > hostinfo.pid_max() * 0.9
    return {"MemoryPressure": memory_low, "DiskPressure": disk_low, "PIDPressure": pids_low}


class NodeAgent:
    def __init__(self, client: Client, settings: NodeSettings, runtime):
        self.client = client
        self.settings = settings
        self.runtime = runtime
        self.uid = ""
        self._last_status: dict | None = None
        self._last_report = 0.0
        self._transitions: dict[str, tuple[str, str]] = {}
        self.registered = asyncio.Event()
        self.ready_reason = ""          # non-empty: NotReady with this message (e.g. no runtime)

    # -- the object -----------------------------------------------------------------------

    def _node_object(self) -> dict:
        labels = {**hostinfo.standard_labels(self.settings.name), **self.settings.labels}
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.settings.name, "labels": labels,
                             "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach":
                                             "true"}},
                "spec": {"taints": self.settings.taints} if self.settings.taints else {}}

    async def register(self) -> dict:
        """Create the Node, or take over the one already there (labels merged)."""
        try:
            node = await self.client.create("", "v1", "nodes", self._node_object())
            log.info("registered node %s", self.settings.name)
        except ApiStatusError as error:
            if error.code != 409:
                raise
            node = await self.client.patch("", "v1", "nodes", self.settings.name,
                                           {"metadata": {"labels": self._node_object()
                                                         ["metadata"]["labels"]}})
            log.info("node %s already registered; adopted it", self.settings.name)
        self.uid = node["metadata"]["uid"]
        self._last_status = None
        await self.update_status(force=True)
        self.registered.set()
        return node

    async def _status(self) -> dict:
        settings = self.settings
        try:
            info = await asyncio.to_thread(self.runtime.version)
            version = info["version"]
            images = await asyncio.to_thread(self.runtime.images)
            runtime_ok = True
        except Exception as error:  # noqa: BLE001 - the runtime's trouble is the node's condition
            version, images, runtime_ok = "unknown", [], False
            self.ready_reason = f"container runtime is down: {error}"
        else:
            self.ready_reason = network_not_ready(info.get("network") or {"ready": True})
            runtime_ok = not self.ready_reason
        capacity = hostinfo.capacity(settings.root_dir, settings.max_pods)
        memory_total = int(capacity["memory"][:-2]) * 1024
        evict_memory = threshold_bytes(settings.eviction_hard.get("memory.available", "100Mi"),
                                       memory_total)
        conditions = []
        for ctype, under in (await asyncio.to_thread(pressures, settings)).items():
            fine_reason, fine_message, bad_reason, bad_message = PRESSURE_CONDITIONS[ctype]
            conditions.append(self._condition(ctype, "True" if under else "False",
                                              bad_reason if under else fine_reason,
                                              bad_message if under else fine_message))
        ready = runtime_ok
        conditions.append(self._condition(
            "Ready", "True" if ready else "False",
            "KubeletReady" if ready else "KubeletNotReady",
            "kubelet is posting ready status" if ready else self.ready_reason))
        return {
            "capacity": capacity,
            "allocatable": hostinfo.allocatable(capacity, evict_memory),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": settings.ip},
                          {"type": "Hostname", "address": settings.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": settings.port}},
            "nodeInfo": hostinfo.node_info(version),
            "images": [{"names": [name for name in (image.get("RepoTags") or image.get("tags")
                                                    or []) if name] or [image.get("Id", "")],
                        "sizeBytes": int(image.get("Size") or 0)}
                       for image in images[:50]],
        }

    def _condition(self, ctype: str, status: str, reason: str, message: str) -> dict:
        previous = self._transitions.get(ctype)
        if previous is None or previous[0] != status:
            previous = (status, now())
            self._transitions[ctype] = previous
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now(), "lastTransitionTime": previous[1]}

    @staticmethod
    def _comparable(status: dict) -> dict:
        """The status without heartbeat times, to tell a change from a mere heartbeat."""
        conditions = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                      for c in status["conditions"]]
        return {**status, "conditions": conditions,
                "allocatable": {k: v for k, v in status["allocatable"].items() if k != "memory"},
                "capacity": {k: v for k, v in status["capacity"].items() if k != "memory"}}

    async def update_status(self, force: bool = False) -> None:
        if not force:
            try:
                await self.client.get("", "v1", "nodes", self.settings.name)
            except ApiStatusError as error:
                if error.code != 404:
                    raise
                log.warning("node %s was deleted; registering it again", self.settings.name)
                await self.register()
                return
        status = await self._status()
        comparable = self._comparable(status)
        due = time.monotonic() - self._last_report >= self.settings.report_seconds
        if not force and not due and comparable == self._last_status:
            return
        try:
            await self.client.patch("", "v1", "nodes", self.settings.name, {"status": status},
                                    sub="status", patch_type="application/strategic-merge-patch+json")
        except ApiStatusError as error:
            if error.code == 404:
                log.warning("node %s was deleted; registering it again", self.settings.name)
                await self.register()
                return
            if error.code == 415:
                await self.client.patch("", "v1", "nodes", self.settings.name,
                                        {"status": status}, sub="status")
            else:
                raise
        self._last_status = comparable
        self._last_report = time.monotonic()

    # -- loops ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the last status this agent made said Ready."""
        return self._transitions.get("Ready", ("False", ""))[0] == "True"

    async def status_loop(self) -> None:
        while True:
            # Until the node is Ready (a new node waiting for its pod network), every second,
            # so that pods are scheduled to it as soon as it can run them (kubelet's fast
            # status updates); then every nodeStatusUpdateFrequency.
            await asyncio.sleep(self.settings.update_seconds if self.ready else
                                min(self.settings.update_seconds, NOT_READY_UPDATE_SECONDS))
            try:
                await self.update_status()
            except Exception as error:  # noqa: BLE001 - keep trying; the API may be restarting
                log.warning("node status update failed: %s", error)

    async def renew_lease(self) -> None:
        name = self.settings.name
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            lease = await self.client.get("coordination.k8s.io", "v1", "leases", name,
                                          ns="kube-node-lease")
        except ApiStatusError as error:
            if error.code != 404:
                raise
            owner = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.uid}] \
                if self.uid else []
            await self.client.create("coordination.k8s.io", "v1", "leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease",
                             "ownerReferences": owner}, "spec": spec}, ns="kube-node-lease")
            return
        lease["spec"].update(spec)
        await self.client.replace("coordination.k8s.io", "v1", "leases", lease,
                                  ns="kube-node-lease")

    async def lease_loop(self) -> None:
        await self.registered.wait()     # the node authorizer ties the Lease to the Node
        backoff = 0.2
        while True:
            try:
                await self.renew_lease()
                backoff = 0.2
                await asyncio.sleep(LEASE_RENEW_SECONDS)
            except Exception as error:  # noqa: BLE001 - retried with backoff, as kubelet does
                log.warning("lease renewal failed (retry in %.1fs): %s", backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 7)
