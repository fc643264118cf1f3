"""runtime/daemon: pod sandboxes for the kubelet.

A sandbox is a named netns networked by CNI plugins or the bridge (see netplug), or the host's
network, plus an ipc and a uts namespace
held by a pause container (the busybox image running `sleep`). Containers created with
{"pod": ID} join the sandbox's net, ipc and uts namespaces; each keeps its own mount and pid
namespaces, cgroup and log. Deleting a pod removes its containers, then the sandbox.

A pod created with {"cgroup_parent": "kubepods/burstable/pod<uid>"} gets its members' cgroups
(the sandbox's included) under that group, which its creator (the kubelet) makes and limits, as
a CRI runtime takes the sandbox's cgroup parent.
"""

from __future__ import annotations

import asyncio
import logging

from . import options
from .containers import ContainerService
from .errors import BadRequest, Conflict, DaemonError, NotFound
from .names import new_id
from .netplug import NetworkPlug
from .state import ContainerRecord, PodRecord, StateDirectory, now_rfc3339

log = logging.getLogger("provisioner.runtime.daemon")
PAUSE_COMMAND = ["sleep", "2147483647"]   # busybox sleep: as PID 1 it ignores TERM; removal KILLs


class PodService:
    def __init__(self, state: StateDirectory, containers: ContainerService,
                 network: NetworkPlug, pause_image: str):
        self.state = state
        self.containers = containers
        self.network = network
        self.pause_image = pause_image
        self.records: dict[str, PodRecord] = {}
        containers.pods = self

    def adopt(self) -> None:
        for record in self.state.load_pods():
            self.records[record.id] = record

    def find(self, key: str) -> PodRecord:
        if key in self.records:
            return self.records[key]
        matches = [pod for pod in self.records.values() if pod.id.startswith(key) and key]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"no such pod: {key}")

    def members(self, pod: PodRecord) -> list[ContainerRecord]:
        return [record for record in self.containers.records.values() if record.pod == pod.id]

    def namespaces_for(self, record: ContainerRecord) -> dict[str, str | None]:
        """The namespaces a pod member's spec asks for (net, ipc, uts; mount and pid are its own)."""
        pod = self.find(record.pod)
        namespaces: dict[str, str | None] = {}
        if not pod.host_network:
            namespaces["net"] = pod.netns
        if record.id == pod.pause_container:
            namespaces["ipc"] = None
            if not pod.host_network:
                namespaces["uts"] = None
            return namespaces
        pause = self.containers.records.get(pod.pause_container or "")
        state = self.containers.status(pause) if pause else None
        if state is None or state.status != "running" or not state.pid:
            raise Conflict(f"the sandbox of pod {pod.namespace}/{pod.name} is not running; "
                           "delete the pod and create it again")
        namespaces["ipc"] = f"/proc/{state.pid}/ns/ipc"
        if not pod.host_network:
            namespaces["uts"] = f"/proc/{state.pid}/ns/uts"
        return namespaces

    def cgroup_parent_of(self, record: ContainerRecord) -> str:
        """The cgroup parent a pod member's cgroup goes under ("" for the daemon's own)."""
        pod = self.records.get(record.pod or "")
        return pod.cgroup_parent if pod is not None else ""

    async def create(self, body: dict) -> PodRecord:
        if not isinstance(body, dict) or not body.get("name"):
            raise BadRequest("a pod needs a name")
        namespace = body.get("namespace") or "default"
        uid = body.get("uid") or ""
        for pod in self.records.values():
            if (pod.name, pod.namespace, pod.uid) == (body["name"], namespace, uid):
                raise Conflict(f"pod {namespace}/{body['name']} (uid {uid or '-'}) already has "
                               f"sandbox {pod.id}; delete it first")
        host_network = bool(body.get("host_network"))
        ports = options.parse_ports(body.get("ports"))
        pod = PodRecord(id=new_id(), name=body["name"], namespace=namespace, uid=uid,
                        hostname=body.get("hostname") or body["name"], host_network=host_network,
                        created=now_rfc3339(), ports=ports, labels=dict(body.get("labels") or {}),
                        cgroup_parent=options.parse_cgroup_parent(body.get("cgroup_parent")))
        if not host_network:
            pod.netns, pod.ip = await asyncio.to_thread(
                self.network.connect_pod, pod.id, ports,
                {"name": pod.name, "namespace": namespace, "uid": uid})
        self.records[pod.id] = pod
        try:
            self.state.save_pod(pod)
            pause = await self.containers.create({
                "image": self.pause_image, "entrypoint": PAUSE_COMMAND[:1],
                "cmd": PAUSE_COMMAND[1:], "pod": pod.id, "hostname": pod.hostname,
                "name": f"POD_{namespace}_{pod.name}_{pod.id[:8]}",
                "labels": {"io.provisioner.pod.sandbox": pod.id}})
            pod.pause_container = pause.id
            self.state.save_pod(pod)
            await self.containers.start(pause.id)
        except BaseException as error:
            await self._tear_down(pod)
            if isinstance(error, NotFound) and "image" in str(error):
                raise NotFound(f"pod sandboxes need the pause image {self.pause_image}: "
                               f"{error}") from None
            raise
        log.info("created pod %s/%s (%s)", namespace, pod.name, pod.id[:12])
        return pod

    async def delete(self, key: str) -> None:
        pod = self.find(key)
        await self._tear_down(pod)
        log.info("removed pod %s/%s (%s)", pod.namespace, pod.name, pod.id[:12])

    async def _tear_down(self, pod: PodRecord) -> None:
        members = self.members(pod)
        # The sandbox goes last: members joined its namespaces.
        members.sort(key=lambda record: record.id == pod.pause_container)
        for record in members:
            try:
                await self.containers.remove(record.id, force=True)
            except DaemonError as error:
                log.warning("removing %s of pod %s: %s", record.name, pod.name, error)
        if not pod.host_network:
            await asyncio.to_thread(self.network.disconnect_pod, pod.id, pod.netns)
        self.records.pop(pod.id, None)
        self.state.remove_pod(pod.id)

    def view(self, pod: PodRecord) -> dict:
        pause = self.containers.records.get(pod.pause_container or "")
        ready = bool(pause) and self.containers.is_running(pause)
        return {"id": pod.id, "name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
                "hostname": pod.hostname, "host_network": pod.host_network, "ip": pod.ip,
                "netns": pod.netns, "created": pod.created, "labels": pod.labels,
                "state": "ready" if ready else "notready", "cgroup_parent": pod.cgroup_parent,
                "ports": [port.__dict__ for port in pod.ports],
                "containers": [record.id for record in self.members(pod)
                               if record.id != pod.pause_container]}
