"""kubelet: the runtime as the kubelet sees it: one relist of sandboxes and containers.

Every container the kubelet makes carries labels naming its pod and container (as kubelet's
io.kubernetes.* labels do), so a relist maps runtime state back to pods, and a restarted kubelet
adopts running containers instead of starting them again. Calls to the synchronous
RuntimeClient run in threads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..runtime.client import RuntimeClient

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
# which kubelet owns it: kubelets of several nodes may share one runtime (tests, dev clusters)
NODE_NAME = "io.provisioner.kubelet.node"
ID_PREFIX = "provisioner-runtime://"


@dataclass
class ContainerView:
    id: str
    name: str                 # the pod's container name
    restart_count: int
    state: str                # created | running | exited
    exit_code: int | None
    oom_killed: bool
    started_at: str | None
    finished_at: str | None
    image: str
    image_id: str
    created: str

    @property
    def container_id(self) -> str:
        return ID_PREFIX + self.id


@dataclass
class SandboxView:
    id: str
    uid: str
    ip: str | None
    ready: bool
    host_network: bool


@dataclass
class Snapshot:
    sandboxes: dict[str, list[SandboxView]] = field(default_factory=dict)    # uid -> sandboxes
    containers: dict[str, list[ContainerView]] = field(default_factory=dict)  # uid -> containers

    def instances(self, uid: str, name: str) -> list[ContainerView]:
        """A container's instances in the runtime, newest (highest restart count) first."""
        return sorted((c for c in self.containers.get(uid, []) if c.name == name),
                      key=lambda c: (c.restart_count, c.created), reverse=True)

    def uids(self) -> set[str]:
        return set(self.sandboxes) | set(self.containers)


class Runtime:
    """Async calls over the runtime daemon's socket."""

    def __init__(self, endpoint: str | None, node_name: str):
        socket = endpoint.removeprefix("unix://") if endpoint else None
        self.client = RuntimeClient(socket, timeout=600)
        self.node_name = node_name

    async def call(self, method: str, *args, **kwargs):
        return await asyncio.to_thread(getattr(self.client, method), *args, **kwargs)

    async def pull(self, image: str) -> None:
        await asyncio.to_thread(lambda: list(self.client.pull(image)))

    def sandbox_view(self, pod: dict) -> SandboxView | None:
        """The runtime's view of a pod sandbox as the kubelet sees it (None: not this node's)."""
        labels = pod.get("labels") or {}
        uid = labels.get(POD_UID)
        if not uid or labels.get(NODE_NAME) != self.node_name:
            return None
        return SandboxView(pod["id"], uid, pod.get("ip"), pod.get("state") == "ready",
                           bool(pod.get("host_network")))

    async def relist(self) -> Snapshot:
        pods, containers = await asyncio.gather(self.call("pods"), self.call("containers", True))
        snapshot = Snapshot()
        for pod in pods:
            view = self.sandbox_view(pod)
            if view is not None:
                snapshot.sandboxes.setdefault(view.uid, []).append(view)
        for row in containers:
            labels = row.get("Labels") or {}
            uid = labels.get(POD_UID)
            if not uid or CONTAINER_NAME not in labels or \
                    labels.get(NODE_NAME) != self.node_name:
                continue
            snapshot.containers.setdefault(uid, []).append(ContainerView(
                row["Id"], labels[CONTAINER_NAME], int(labels.get(RESTART_COUNT, 0)),
                row["State"], row.get("ExitCode"), bool(row.get("OOMKilled")),
                row.get("StartedAt"), row.get("FinishedAt"), row.get("Image", ""),
                row.get("ImageID", ""), row.get("Created", "")))
        return snapshot
