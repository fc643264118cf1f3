"""kubelet: one worker per pod, bringing the runtime in line with the pod's spec.

Each sync, against the latest relist: make the sandbox (one runtime pod: shared net, ipc and
uts namespaces), the volumes, /etc/hosts and /etc/resolv.conf; run init containers one after the
other; start the containers; restart exited ones per restartPolicy with CrashLoopBackOff (10 s,
doubling to 5 min); run probes and hooks; then write the pod status when it changed. A pod being
deleted is stopped gracefully (preStop, TERM, grace period, KILL) and its sandbox removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

from ..runtime.client import RuntimeAPIError
from ..runtime.container.cgroups import CgroupSetupFailed
from . import metrics, probes, security
from .containerstart import ContainerStart, Waiting
from .podstatus import build_status
from .runtimeview import (
    NODE_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    ContainerView,
    SandboxView,
    Snapshot,
)
from .volumes import PodVolumes, VolumeError

log = logging.getLogger("kubelet.pods")
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
VOLUME_REFRESH_SECONDS = 10.0


@dataclass
class ContainerMemory:
    """What the kubelet keeps about one container of a pod between syncs."""
    backoff: float = 0.0                  # the current CrashLoopBackOff; 0: none yet
    exit_seen: dict[str, float] = field(default_factory=dict)      # instance id -> monotonic
    waiting: Waiting | None = None
    probes: dict[tuple[str, str], probes.ProbeState] = field(default_factory=dict)
    started_seen: dict[str, float] = field(default_factory=dict)   # instance id -> monotonic
    hook_done: set[str] = field(default_factory=set)


class PodWorker(ContainerStart):
    def __init__(self, kubelet, pod: dict):
        self.kubelet = kubelet
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.wake = asyncio.Event()
        self.memory: dict[str, ContainerMemory] = {}
        self.volumes: PodVolumes | None = None
        self.volumes_at = 0.0
        self.last_status: dict | None = None
        self.start_time = None
        self.done = False
        self.terminated_final = False
        self.sandbox_error = ""
        self.volume_error = ""
        self.task: asyncio.Task | None = None
        self.first_seen = time.monotonic()
        self.eviction: str | None = None      # set by the eviction manager: the message
        self.start_observed = False
        self.rejection_published = False
        self.cgroup_ensured = False

    @property
    def key(self) -> str:
        return f"{self.pod['metadata'].get('namespace')}/{self.pod['metadata']['name']}"

    def mem(self, name: str) -> ContainerMemory:
        return self.memory.setdefault(name, ContainerMemory())

    def evict(self, message: str) -> None:
        self.eviction = message
        self.wake.set()

    def update(self, pod: dict) -> None:
        self.pod = pod
        self.wake.set()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        while not self.done:
            began = time.monotonic()
            try:
                await self.sync(self.kubelet.snapshot)
                metrics.pod_worker_duration.labels("sync").observe(time.monotonic() - began)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one pod's trouble never stops the kubelet
                log.exception("syncing pod %s failed", self.key)
            if self.done:
                break
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    def terminating(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp")) or self.kubelet.is_removed(self)

    async def sync(self, snapshot: Snapshot) -> None:
        if self.eviction is not None and not self.terminating():
            await self.terminate(snapshot, evicted=True)
            return
        if self.terminating():
            await self.terminate(snapshot)
            return
        if self.start_time is None and await self.rejected():
            return
        sandbox = next((s for s in snapshot.sandboxes.get(self.uid, []) if s.ready), None)
        if sandbox is None:
            # volumes need no sandbox: set them up while the runtime makes it (both wait on
            # other processes: the runtime, the API server for tokens and configMaps)
            made, _ = await asyncio.gather(self.make_sandbox(snapshot), self.ensure_volumes())
            if made is None:
                await self.report(snapshot, None)
                return
            if not made.ready:         # the next relist shows how it went
                return
            sandbox = made             # as the runtime answered: no relist needed
        elif not self.cgroup_ensured:
            # an adopted pod (the kubelet restarted): its group counts in the QoS group again
            try:
                await self.kubelet.cgroups.ensure_pod(self.pod)
            except CgroupSetupFailed as error:
                log.warning("pod %s: cgroup limits not applied again: %s", self.key, error)
            self.cgroup_ensured = True
        if self.start_time is None:
            self.start_time = self.kubelet.now()
        if not await self.ensure_volumes():
            await self.report(snapshot, sandbox)
            return
        spec = self.pod["spec"]
        phase_done = self.pod_finished(snapshot)
        if not phase_done and await self.run_init_containers(snapshot, sandbox):
            for container in spec["containers"]:
                await self.sync_container(container, snapshot, sandbox)
        # a container started above refreshed the kubelet's snapshot: report from that one, or
        # the pod shows Running only after the next relist or watch echo wakes this worker
        await self.report(self.kubelet.snapshot, sandbox)

    def pod_finished(self, snapshot: Snapshot) -> bool:
        """restartPolicy Never/OnFailure pods whose containers all ended are left as they are."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if policy == "Always":
            return False
        for container in self.pod["spec"]["containers"]:
            instances = snapshot.instances(self.uid, container["name"])
            if not instances or instances[0].state != "exited":
                return False
            if policy == "OnFailure" and instances[0].exit_code != 0:
                return False
        return True

    async def rejected(self) -> bool:
        """Admission, as kubelet's: a pod asking for a sysctl this node does not allow fails
        (SysctlForbidden) without being started, and is not run again."""
        problem = security.forbidden_sysctl(self.pod,
                                            self.kubelet.config.get("allowedUnsafeSysctls") or [])
        if problem is None:
            return False
        if not self.rejection_published:
            message = f"Pod was rejected: {problem}"
            self.kubelet.event(self.pod, "Warning", "SysctlForbidden", message)
            status = {"phase": "Failed", "reason": "SysctlForbidden", "message": message}
            # published once; the worker stays to see the pod deleted
            self.rejection_published = await self.kubelet.publish_status(self, status)
        return True

    # -- sandbox, volumes, files -----------------------------------------------------------

    @property
    def pod_dir(self) -> str:
        return os.path.join(self.kubelet.root_dir, "pods", self.uid)

    async def make_sandbox(self, snapshot: Snapshot) -> SandboxView | None:
        for stale in snapshot.sandboxes.get(self.uid, []):
            await self.kubelet.runtime.call("remove_pod", stale.id)
        metadata, spec = self.pod["metadata"], self.pod["spec"]
        ports = [{"host_port": p["hostPort"], "container_port": p["containerPort"],
                  "protocol": p.get("protocol", "TCP").lower(), "host_ip": p.get("hostIP", "")}
                 for c in spec["containers"] for p in c.get("ports") or [] if p.get("hostPort")]
        try:
            cgroup_parent = await self.kubelet.cgroups.ensure_pod(self.pod)
            self.cgroup_ensured = True
            created = await self.kubelet.runtime.call(
                "create_pod", metadata["name"], metadata.get("namespace", "default"), self.uid,
                spec.get("hostname") or metadata["name"][:63], bool(spec.get("hostNetwork")),
                [] if spec.get("hostNetwork") else ports,
                {POD_UID: self.uid, POD_NAME: metadata["name"],
                 POD_NAMESPACE: metadata.get("namespace", "default"),
                 NODE_NAME: self.kubelet.node_name}, cgroup_parent)
        except (RuntimeAPIError, CgroupSetupFailed) as error:
            self.sandbox_error = str(error)
            self.kubelet.event(self.pod, "Warning", "FailedCreatePodSandBox",
                               f"Failed to create pod sandbox: {error}")
            return None
        self.sandbox_error = ""
        metrics.started_pods.inc()
        return self.kubelet.runtime.sandbox_view(created)

    async def ensure_volumes(self) -> bool:
        if self.volumes is None:
            self.volumes = PodVolumes(self.pod_dir, self.pod, self.kubelet.lookup_for(self.pod),
                                      self.kubelet.token_for(self.pod), self.kubelet.node_ip,
                                      self.kubelet.allocatable)
        if self.volumes_at and time.monotonic() - self.volumes_at < VOLUME_REFRESH_SECONDS:
            return True
        try:
            self.volumes.pod = self.pod
            await self.volumes.setup()
            self.volumes_at = time.monotonic()
            self.volume_error = ""
            return True
        except (VolumeError, OSError) as error:
            self.volume_error = str(error)
            self.kubelet.event(self.pod, "Warning", "FailedMount",
                               f"MountVolume.SetUp failed: {error}", once_per=30)
            return False

    # -- containers -----------------------------------------------------------------------

    async def run_init_containers(self, snapshot: Snapshot, sandbox) -> bool:
        """True once every init container has completed."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for container in self.pod["spec"].get("initContainers") or []:
            instances = snapshot.instances(self.uid, container["name"])
            latest = instances[0] if instances else None
            if latest is not None and latest.state == "exited" and latest.exit_code == 0:
                continue
            if latest is None:
                await self.start_container(container, 0, sandbox)
            elif latest.state == "exited" and policy != "Never":
                await self.restart_after_backoff(container, latest, sandbox)
            elif latest.state == "created":
                await self.kubelet.runtime.call("start", latest.id)
            return False
        return True

    async def sync_container(self, container: dict, snapshot: Snapshot, sandbox) -> None:
        name = container["name"]
        instances = snapshot.instances(self.uid, name)
        latest = instances[0] if instances else None
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if latest is None:
            await self.start_container(container, 0, sandbox)
            return
        if latest.state == "running":
            await self.run_probes(container, latest, sandbox)
            return
        if latest.state == "created":
            await self.kubelet.runtime.call("start", latest.id)
            return
        restart = policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0)
        if restart:
            await self.restart_after_backoff(container, latest, sandbox)

    async def restart_after_backoff(self, container: dict, latest: ContainerView,
                                    sandbox) -> None:
        """kubelet's CrashLoopBackOff: the first exit restarts at once; each later exit waits
        the current back-off (10 s, then doubling to 5 min) from when it was seen."""
        memory = self.mem(container["name"])
        now = time.monotonic()
        exited_at = memory.exit_seen.setdefault(latest.id, now)
        if memory.backoff and now - exited_at < memory.backoff:
            memory.waiting = Waiting("CrashLoopBackOff",
                                     f"back-off {int(memory.backoff)}s restarting failed container="
                                     f"{container['name']} pod={self.pod['metadata']['name']}_"
                                     f"{self.pod['metadata'].get('namespace')}({self.uid})")
            self.kubelet.event(self.pod, "Warning", "BackOff",
                               "Back-off restarting failed container "
                               f"{container['name']} in pod {self.pod['metadata']['name']}",
                               once_per=memory.backoff, field_path=self.field_path(container))
            return
        if await self.start_container(container, latest.restart_count + 1, sandbox):
            memory.backoff = min(memory.backoff * 2, BACKOFF_MAX) if memory.backoff \
                else BACKOFF_START
            # the instance before the previous one goes; the previous stays for --previous logs
            for old in self.kubelet.snapshot.instances(self.uid, container["name"])[1:]:
                if old.id != latest.id and old.state == "exited":
                    await self.kubelet.runtime.call("remove", old.id, True)
                    memory.exit_seen.pop(old.id, None)

    def field_path(self, container: dict) -> str:
        init = any(c["name"] == container["name"] for c in self.pod["spec"].get("initContainers")
                   or [])
        return f"spec.{'initContainers' if init else 'containers'}{{{container['name']}}}"

    # -- probes ---------------------------------------------------------------------------

    async def run_probes(self, container: dict, instance: ContainerView, sandbox) -> None:
        memory = self.mem(container["name"])
        started = memory.started_seen.setdefault(instance.id, time.monotonic())
        ip = sandbox.ip or self.kubelet.node_ip
        startup = container.get("startupProbe")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if not probe:
                continue
            state = memory.probes.setdefault((instance.id, kind), probes.ProbeState())
            if kind != "startupProbe" and startup and \
                    memory.probes.get((instance.id, "startupProbe"), probes.ProbeState()).result \
                    is not True:
                continue
            if kind == "startupProbe" and state.result is True:
                continue
            if not probes.due(probe, state, started):
                continue

            async def exec_fn(cmd, timeout, cid=instance.id):
                return await self.kubelet.exec_collect(cid, cmd, timeout)
            ok, message = await probes.run(probe, container, ip, exec_fn)
            verdict = probes.record(probe, state, ok, message)
            if not ok:
                label = {"startupProbe": "Startup", "livenessProbe": "Liveness",
                         "readinessProbe": "Readiness"}[kind]
                self.kubelet.event(self.pod, "Warning", "Unhealthy",
                                   f"{label} probe failed: {message}",
                                   field_path=self.field_path(container))
            if verdict is False and kind in ("livenessProbe", "startupProbe"):
                what = "liveness" if kind == "livenessProbe" else "startup"
                self.kubelet.event(self.pod, "Normal", "Killing",
                                   f"Container {container['name']} failed {what} probe, will be "
                                   "restarted", field_path=self.field_path(container))
                await self.stop_container(container, instance.id, self.grace())
                await self.kubelet.refresh()
                return

    def ready(self, container: dict, instance: ContainerView) -> bool:
        if instance.state != "running":
            return False
        memory = self.mem(container["name"])
        if container.get("startupProbe") and memory.probes.get(
                (instance.id, "startupProbe"), probes.ProbeState()).result is not True:
            return False
        if not container.get("readinessProbe"):
            return True
        return memory.probes.get((instance.id, "readinessProbe"), probes.ProbeState()).result \
            is True

    def started(self, container: dict, instance: ContainerView) -> bool:
        if instance.state != "running":
            return False
        if not container.get("startupProbe"):
            return True
        return self.mem(container["name"]).probes.get(
            (instance.id, "startupProbe"), probes.ProbeState()).result is True

    # -- termination ----------------------------------------------------------------------

    def grace(self) -> int:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        value = meta.get("deletionGracePeriodSeconds")
        return int(value if value is not None else spec.get("terminationGracePeriodSeconds", 30))

    async def stop_container(self, container: dict, container_id: str, grace: int) -> None:
        deadline = time.monotonic() + grace
        hook = (container.get("lifecycle") or {}).get("preStop")
        if hook and "exec" in hook and grace > 0:
            await self.kubelet.exec_collect(container_id, hook["exec"]["command"], grace)
        remaining = max(0, int(deadline - time.monotonic()))
        try:
            await self.kubelet.runtime.call("stop", container_id, remaining)
        except RuntimeAPIError as error:
            log.warning("stopping %s: %s", container_id[:12], error)

    async def terminate(self, snapshot: Snapshot, evicted: bool = False) -> None:
        grace = 0 if evicted else self.grace()     # evictionMaxPodGracePeriod: 0 for hard
        running = []
        spec_by_name = {c["name"]: c for c in [*(self.pod["spec"].get("initContainers") or []),
                                                *self.pod["spec"]["containers"]]}
        for instance in snapshot.containers.get(self.uid, []):
            if instance.state == "running":
                self.kubelet.event(self.pod, "Normal", "Killing",
                                   f"Stopping container {instance.name}")
                running.append(self.stop_container(spec_by_name.get(instance.name, {}),
                                                   instance.id, grace))
        await asyncio.gather(*running)
        snapshot = await self.kubelet.refresh()
        if evicted:
            self.kubelet.event(self.pod, "Warning", "Evicted", self.eviction or "")
            await self.report(snapshot, None, final=True, eviction=self.eviction)
        elif self.pod["metadata"].get("deletionTimestamp") and not self.kubelet.is_removed(self):
            await self.report(snapshot, None, final=True)
        for sandbox in snapshot.sandboxes.get(self.uid, []):
            await self.kubelet.runtime.call("remove_pod", sandbox.id)
        for instance in snapshot.containers.get(self.uid, []):
            try:
                await self.kubelet.runtime.call("remove", instance.id, True)
            except RuntimeAPIError:
                pass
        if self.volumes is not None:
            await asyncio.to_thread(self.volumes.teardown)
        else:
            await asyncio.to_thread(PodVolumes(self.pod_dir, self.pod, None, None, "", {})
                                    .teardown)
        await self.kubelet.pod_terminated(self, evicted)
        self.done = True

    # -- status ---------------------------------------------------------------------------

    async def report(self, snapshot: Snapshot, sandbox, final: bool = False,
                     eviction: str | None = None) -> None:
        status = build_status(self, snapshot, sandbox, final)
        if eviction is not None:
            status.update(phase="Failed", reason="Evicted", message=eviction)
            status["conditions"].append({"type": "DisruptionTarget", "status": "True",
                                         "reason": "TerminationByKubelet", "message": eviction,
                                         "lastProbeTime": None,
                                         "lastTransitionTime": self.kubelet.now()})
        comparable = {**status, "conditions": [{k: v for k, v in c.items()
                                                if k != "lastTransitionTime"}
                                               for c in status["conditions"]]}
        if comparable == self.last_status:
            return
        if not self.start_observed and status["phase"] == "Running" and all(
                "running" in s["state"] for s in status["containerStatuses"]):
            self.start_observed = True
            metrics.pod_start_duration.observe(time.monotonic() - self.first_seen)
        if await self.kubelet.publish_status(self, status):
            self.last_status = comparable

