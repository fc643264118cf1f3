"""kubelet: the node agent put together: pod sources, relist, workers, node, mirror pods, events.

Pods come from two sources: static manifests (always, even with no API server: this is how a
control-plane host starts its API server) and the API (pods whose spec.nodeName is this node,
once a kubeconfig is given and the server answers). A relist of the runtime every second wakes
the pod workers; a pod the sources no longer have is stopped and its containers removed.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import time

from ..api.client import ApiStatusError, Client
from . import metrics, staticpods
from .node import NodeAgent
from .podcgroups import PodCgroups
from .podworker import PodWorker
from .runtimeview import Runtime, Snapshot
from .tokens import TokenManager

log = logging.getLogger("kubelet")
RELIST_SECONDS = 1.0
STATIC_CHECK_SECONDS = 2.0
SERVICE_ENV_SECONDS = 10.0


class Kubelet:
    def __init__(self, *, node_name: str, node_ip: str, root_dir: str, runtime: Runtime,
                 config: dict, client: Client | None, node: NodeAgent | None):
        self.node_name = node_name
        self.node_ip = node_ip
        self.root_dir = root_dir
        self.runtime = runtime
        self.config = config
        self.client = client
        self.node = node
        self.cluster_dns = list(config.get("clusterDNS") or [])
        self.cluster_domain = config.get("clusterDomain") or "cluster.local"
        self.host_resolv_conf = config.get("resolvConf") or "/etc/resolv.conf"
        self.snapshot = Snapshot()
        self.workers: dict[str, PodWorker] = {}
        self.static_pods: dict[str, dict] = {}
        self.api_pods: dict[str, dict] = {}
        self.allocatable: dict = {}
        self._refresh_lock = asyncio.Lock()
        self._relists_begun = 0
        self._reads: dict[tuple, asyncio.Future] = {}
        self._events_sent: dict[tuple, float] = {}
        self._service_env: tuple[float, dict[str, str]] | None = None
        self._static_problems: set[str] = set()
        self.mirror_uids: dict[str, str] = {}     # static uid -> mirror pod uid in the API
        self.tokens = TokenManager(client)
        self.finished: set[str] = set()          # evicted pods: never started again
        self.cgroups = PodCgroups(config)          # QoS and pod cgroups (kubepods/...)
        metrics.node_name.labels(node_name).set(1)

    # -- small services for the workers ----------------------------------------------------

    @staticmethod
    def now() -> str:
        return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def refresh(self) -> Snapshot:
        """A snapshot from a relist begun after this call. Callers arriving while one runs
        share the next one: 30 pods starting at once would otherwise queue 60 relists."""
        asked = self._relists_begun
        async with self._refresh_lock:
            if self._relists_begun == asked:
                self._relists_begun += 1
                self.snapshot = await self.runtime.relist()
        return self.snapshot

    async def exec_collect(self, container_id: str, cmd: list[str], timeout: float):
        try:
            return await asyncio.wait_for(self.runtime.call("exec_collect", container_id, cmd),
                                          timeout)
        except asyncio.TimeoutError:
            return -1, b"command timed out"
        except Exception as error:  # noqa: BLE001 - a failed exec is a failed probe/hook
            return -1, str(error).encode()

    def is_removed(self, worker: PodWorker) -> bool:
        return worker.uid not in self.static_pods and worker.uid not in self.api_pods

    def lookup_for(self, pod: dict):
        namespace = pod["metadata"].get("namespace", "default")
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}

        async def lookup(kind: str, name: str) -> dict | None:
            if self.client is None:
                return None
            client = self.client
            try:
                obj = await self.shared_read(
                    (plural[kind], namespace, name),
                    lambda: client.get("", "v1", plural[kind], name, ns=namespace))
            except ApiStatusError as error:
                if error.code == 404:
                    return None
                raise
            obj.setdefault("kind", kind)
            return obj
        return lookup

    async def shared_read(self, key: tuple, read):
        """One API read for identical concurrent ones: pods starting together read the same
        kube-root-ca.crt and kubernetes Service; nothing is kept once the read is answered."""
        task = self._reads.get(key)
        if task is None:
            task = asyncio.ensure_future(read())
            self._reads[key] = task
            task.add_done_callback(lambda _done: self._reads.pop(key, None))
        # shielded: a waiter cancelled (its pod deleted) does not cancel the others' read
        return copy.deepcopy(await asyncio.shield(task))

    def token_for(self, pod: dict):
        async def token(service_account: str, audience: str, seconds: int) -> str:
            return await self.tokens.get(pod, service_account, audience, seconds)
        return token

    async def service_env(self, pod: dict) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT (and the docker-link variables) for in-cluster clients."""
        if self.client is None:
            return {}
        cached = self._service_env
        if cached is not None and time.monotonic() - cached[0] < SERVICE_ENV_SECONDS:
            return cached[1]     # a burst of starting pods asks the API server once
        client = self.client
        try:
            service = await self.shared_read(
                ("services", "default", "kubernetes"),
                lambda: client.get("", "v1", "services", "kubernetes", ns="default"))
        except Exception:  # noqa: BLE001 - no service yet: no variables, as with a new cluster
            return {}
        env = self._kubernetes_env(service)
        self._service_env = (time.monotonic(), env)
        return env

    @staticmethod
    def _kubernetes_env(service: dict) -> dict[str, str]:
        ip = service["spec"].get("clusterIP")
        port = (service["spec"].get("ports") or [{}])[0].get("port", 443)
        if not ip:
            return {}
        return {"KUBERNETES_SERVICE_HOST": ip, "KUBERNETES_SERVICE_PORT": str(port),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
                "KUBERNETES_PORT": f"tcp://{ip}:{port}",
                f"KUBERNETES_PORT_{port}_TCP": f"tcp://{ip}:{port}",
                f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
                f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
                f"KUBERNETES_PORT_{port}_TCP_ADDR": ip}

    def event(self, pod: dict, kind: str, reason: str, message: str, field_path: str = "",
              once_per: float = 0) -> None:
        """Record an Event (fire and forget); repeats within once_per seconds are dropped."""
        key = (pod["metadata"].get("uid"), reason, field_path, message if not once_per else "")
        now = time.monotonic()
        if key in self._events_sent and now - self._events_sent[key] < max(once_per, 1):
            return
        self._events_sent[key] = now
        (log.warning if kind == "Warning" else log.info)("%s/%s %s: %s",
                                                         pod["metadata"].get("namespace"),
                                                         pod["metadata"]["name"], reason, message)
        if self.client is None:
            return
        asyncio.get_running_loop().create_task(self._post_event(pod, kind, reason, message,
                                                                field_path))

    async def _post_event(self, pod: dict, kind: str, reason: str, message: str,
                          field_path: str) -> None:
        meta = pod["metadata"]
        namespace = meta.get("namespace", "default")
        stamp = self.now()
        uid = self.mirror_uids.get(meta["uid"], meta["uid"])
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": namespace,
                                   "name": meta["name"], "uid": uid,
                                   **({"fieldPath": field_path} if field_path else {})},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "source": {"component": "kubelet", "host": self.node_name},
                "firstTimestamp": stamp, "lastTimestamp": stamp,
                "reportingComponent": "kubelet", "reportingInstance": self.node_name}
        try:
            await self.client.create("", "v1", "events", body, ns=namespace)
        except Exception as error:  # noqa: BLE001 - events are best effort, as upstream
            log.debug("event not recorded: %s", error)

    async def publish_status(self, worker: PodWorker, status: dict) -> bool:
        if self.client is None:
            return True
        meta = worker.pod["metadata"]
        name, namespace = meta["name"], meta.get("namespace", "default")
        if worker.uid in self.static_pods and worker.uid not in self.mirror_uids:
            return False      # the mirror pod is not there yet
        try:
            await self.client.patch("", "v1", "pods", name, {"status": status}, ns=namespace,
                                    sub="status")
            return True
        except ApiStatusError as error:
            if error.code != 404:
                log.warning("status of pod %s/%s not written: %s", namespace, name, error)
            return False
        except Exception as error:  # noqa: BLE001 - the API may be restarting
            log.warning("status of pod %s/%s not written: %s", namespace, name, error)
            return False

    async def pod_terminated(self, worker: PodWorker, evicted: bool = False) -> None:
        """The final delete of an API pod being deleted, once its containers are gone; an
        evicted pod stays (Failed) and is not run again."""
        self.workers.pop(worker.uid, None)
        await self.cgroups.remove_pod(worker.uid)
        if evicted:
            self.finished.add(worker.uid)
            return
        self.tokens.forget(worker.uid)
        meta = worker.pod["metadata"]
        if self.client is None or worker.uid in self.static_pods or \
                not meta.get("deletionTimestamp"):
            return
        try:
            await self.client.request(
                "DELETE", f"/api/v1/namespaces/{meta.get('namespace', 'default')}/pods/"
                f"{meta['name']}", {"gracePeriodSeconds": 0,
                                    "preconditions": {"uid": worker.uid}})
        except ApiStatusError as error:
            if error.code not in (404, 409):
                log.warning("final delete of %s failed: %s", worker.key, error)

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start workers for new pods; wake workers of changed and removed pods."""
        wanted = {**self.api_pods, **self.static_pods}
        for uid, pod in wanted.items():
            worker = self.workers.get(uid)
            if worker is None and (uid in self.finished or (pod.get("status") or {}).get(
                    "phase") in ("Failed", "Succeeded")):
                continue          # a pod that ended is not run again
            if worker is None:
                worker = PodWorker(self, pod)
                self.workers[uid] = worker
                worker.task = asyncio.get_running_loop().create_task(worker.run())
            elif worker.pod is not pod:
                worker.update(pod)
        for uid, worker in self.workers.items():
            if uid not in wanted:
                worker.wake.set()

    async def relist_loop(self) -> None:
        swept = False
        while True:
            try:
                before = self.snapshot
                after = await self.refresh()
                self.collect_orphans(after)
                if not swept:
                    await self.collect_orphan_cgroups(after)
                    swept = True
                self.count(after)
                if after != before:
                    for worker in self.workers.values():
                        worker.wake.set()
            except Exception as error:  # noqa: BLE001 - the runtime may be restarting
                log.warning("relist failed: %s", error)
            await asyncio.sleep(RELIST_SECONDS)

    @staticmethod
    def count(snapshot: Snapshot) -> None:
        metrics.running_pods.set(sum(1 for boxes in snapshot.sandboxes.values()
                                     if any(box.ready for box in boxes)))
        states: dict[str, int] = {"running": 0, "exited": 0, "created": 0}
        for containers in snapshot.containers.values():
            for container in containers:
                states[container.state] = states.get(container.state, 0) + 1
        for state, number in states.items():
            metrics.running_containers.labels(state).set(number)

    def collect_orphans(self, snapshot: Snapshot) -> None:
        """Sandboxes and containers of pods the kubelet no longer has (deleted while it was
        down) get a worker that only tears them down."""
        for uid in snapshot.uids():
            if uid in self.workers or uid in self.static_pods or uid in self.api_pods:
                continue
            name = next((c.name for c in snapshot.containers.get(uid, [])), "orphan")
            pod = {"metadata": {"uid": uid, "name": f"orphan-{name}", "namespace": ""},
                   "spec": {"containers": [], "terminationGracePeriodSeconds": 2}}
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.task = asyncio.get_running_loop().create_task(worker.run())

    async def collect_orphan_cgroups(self, snapshot: Snapshot) -> None:
        """At start, pod cgroups of pods with neither a worker nor anything in the runtime (a
        kubelet stopped between making the group and the sandbox) are removed."""
        known = snapshot.uids() | set(self.workers) | set(self.static_pods) | set(self.api_pods)
        for uid in await asyncio.to_thread(self.cgroups.pod_uids_on_host) - known:
            await self.cgroups.remove_pod(uid)

    async def static_loop(self) -> None:
        path = self.config.get("staticPodPath") or ""
        while True:
            pods, problems = await asyncio.to_thread(staticpods.read_manifests, path,
                                                     self.node_name)
            for problem in set(problems) - self._static_problems:
                log.error("static pod manifest skipped: %s", problem)
            self._static_problems = set(problems)
            if set(pods) != set(self.static_pods):
                self.static_pods = pods
                self.dispatch()
            await asyncio.sleep(STATIC_CHECK_SECONDS)

    # -- the API side ---------------------------------------------------------------------

    async def api_loop(self) -> None:
        """Register the node, then watch this node's pods; retry while the API is away."""
        assert self.client is not None and self.node is not None
        backoff = 0.5
        while True:
            try:
                if not self.node.registered.is_set():
                    await self.node.register()
                    node_status = (await self.client.get("", "v1", "nodes", self.node_name))
                    self.allocatable = node_status["status"].get("allocatable") or {}
                await self.watch_pods()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep trying; the API may not be up yet
                log.warning("API server not reachable (%s); retrying in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 7)

    async def watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        listing = await self.client.list("", "v1", "pods", fieldSelector=selector)
        fresh = {}
        for pod in listing.get("items") or []:
            if not staticpods.is_mirror(pod):
                fresh[pod["metadata"]["uid"]] = pod
        self.api_pods = fresh
        await self.sync_mirrors(listing.get("items") or [])
        self.dispatch()
        version = listing["metadata"].get("resourceVersion", "")
        async for kind, pod in self.client.watch("", "v1", "pods", resource_version=version,
                                                 fieldSelector=selector):
            if kind == "BOOKMARK":
                continue
            if kind == "ERROR":
                return           # expired: list again
            uid = pod["metadata"]["uid"]
            if staticpods.is_mirror(pod):
                if kind == "DELETED":
                    self.mirror_uids = {k: v for k, v in self.mirror_uids.items() if v != uid}
                continue
            if kind == "DELETED":
                self.api_pods.pop(uid, None)
            else:
                self.api_pods[uid] = pod
            self.dispatch()

    async def sync_mirrors(self, items: list[dict]) -> None:
        """Create a mirror pod for each static pod, delete mirrors of static pods gone."""
        mirrors = {pod["metadata"]["annotations"][staticpods.MIRROR]: pod for pod in items
                   if staticpods.is_mirror(pod)}
        node = None
        for uid, pod in self.static_pods.items():
            if uid in mirrors:
                self.mirror_uids[uid] = mirrors[uid]["metadata"]["uid"]
                continue
            if node is None:
                node = await self.client.get("", "v1", "nodes", self.node_name)
            namespace = pod["metadata"]["namespace"]
            try:
                created = await self.client.create("", "v1", "pods",
                                                   staticpods.mirror_of(pod, node), ns=namespace)
            except ApiStatusError as error:
                if error.code == 409:      # an old mirror (the static pod changed): replace
                    await self.client.request(
                        "DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}",
                        {"gracePeriodSeconds": 0})
                    continue
                log.warning("mirror pod for %s not created: %s", pod["metadata"]["name"], error)
                continue
            self.mirror_uids[uid] = created["metadata"]["uid"]
            if uid in self.workers:
                self.workers[uid].last_status = None
        for uid, mirror in mirrors.items():
            if uid not in self.static_pods:
                meta = mirror["metadata"]
                try:
                    await self.client.request(
                        "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        {"gracePeriodSeconds": 0})
                except ApiStatusError:
                    pass

    async def mirror_loop(self) -> None:
        """Keep mirror pods in step with the static pods (every few seconds)."""
        while True:
            await asyncio.sleep(STATIC_CHECK_SECONDS)
            if self.client is None or not self.node.registered.is_set():
                continue
            try:
                listing = await self.client.list("", "v1", "pods",
                                                 fieldSelector=f"spec.nodeName={self.node_name}")
                await self.sync_mirrors(listing.get("items") or [])
            except Exception as error:  # noqa: BLE001 - retried on the next round
                log.debug("mirror pod sync failed: %s", error)
