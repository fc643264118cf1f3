"""Which controllers exist, and running the chosen ones on shared informers while leading.

CONTROLLERS is the table: kube-controller-manager's canonical name, the short alias `--controllers`
has always accepted, where the class lives, and whether `*` turns it on. run_controllers() builds
fresh informers and controllers for each term of leadership, so after a lost lease nothing
carries over from the previous term (no half-made decision is acted on twice).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass

from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.informer import InformerFactory

from . import discovery
from .base import Context
from .credentials import ServiceAccountClients
from .flags import Options

log = logging.getLogger(__name__)
SYNC_PATIENCE = 60  # seconds to wait for the first list of every informer before running anyway


@dataclass(frozen=True)
class Entry:
    name: str  # canonical (names.go)
    alias: str  # what --controllers has accepted since before the canonical names
    target: str  # module:Class within this package
    on_by_default: bool = True


CONTROLLERS: list[Entry] = [
    Entry("replicaset-controller", "replicaset", "replicaset:ReplicaSetController"),
    Entry("deployment-controller", "deployment", "deployment:DeploymentController"),
    Entry("replicationcontroller-controller", "replicationcontroller",
          "replicaset:ReplicationControllerController"),
    Entry("serviceaccount-controller", "serviceaccount", "serviceaccount:ServiceAccountController"),
    Entry("serviceaccount-token-controller", "serviceaccount-token", "serviceaccounttoken:ServiceAccountTokenController"),
    Entry("root-ca-certificate-publisher-controller", "root-ca-cert-publisher", "rootca:RootCAPublisher"),
    Entry("namespace-controller", "namespace", "namespace:NamespaceController"),
    Entry("garbage-collector-controller", "garbagecollector", "garbagecollector:GarbageCollector"),
    Entry("pod-garbage-collector-controller", "podgc", "podgc:PodGCController"),
    Entry("endpoints-controller", "endpoint", "endpoints:EndpointsController"),
    Entry("endpointslice-controller", "endpointslice", "endpointslice:EndpointSliceController"),
    Entry("endpointslice-mirroring-controller", "endpointslicemirroring",
          "endpointslicemirroring:EndpointSliceMirroringController"),
    Entry("daemonset-controller", "daemonset", "daemonset:DaemonSetController"),
    Entry("ttl-controller", "ttl", "ttl:TTLController"),
    Entry("node-ipam-controller", "nodeipam", "nodeipam:NodeIpamController"),
    Entry("node-lifecycle-controller", "nodelifecycle", "nodelifecycle:NodeLifecycleController"),
    Entry("taint-eviction-controller", "taint-eviction-controller", "tainteviction:TaintEvictionController"),
    Entry("certificatesigningrequest-approving-controller", "csrapproving", "csrapproving:CSRApprovingController"),
    Entry("certificatesigningrequest-signing-controller", "csrsigning", "csrsigning:CSRSigningController"),
    Entry("statefulset-controller", "statefulset", "statefulset:StatefulSetController"),
    Entry("job-controller", "job", "job:JobController"),
    Entry("cronjob-controller", "cronjob", "cronjob:CronJobController"),
    Entry("ttl-after-finished-controller", "ttl-after-finished", "ttlafterfinished:TTLAfterFinishedController"),
    Entry("persistentvolume-binder-controller", "persistentvolume-binder", "pvbinder:PersistentVolumeBinder"),
    Entry("ephemeral-volume-controller", "ephemeral-volume", "ephemeralvolume:EphemeralVolumeController"),
    Entry("persistentvolumeclaim-protection-controller", "pvc-protection", "protection:PVCProtectionController"),
    Entry("persistentvolume-protection-controller", "pv-protection", "protection:PVProtectionController"),
    Entry("resourcequota-controller", "resourcequota", "resourcequota:ResourceQuotaController"),
    Entry("disruption-controller", "disruption", "disruption:DisruptionController"),
    Entry("horizontal-pod-autoscaler-controller", "horizontalpodautoscaling",
          "hpa:HorizontalPodAutoscalerController"),
    Entry("clusterrole-aggregation-controller", "clusterrole-aggregation",
          "clusterroleaggregation:ClusterRoleAggregationController"),
    Entry("bootstrap-signer-controller", "bootstrapsigner", "bootstrap:BootstrapSigner", on_by_default=False),
    Entry("token-cleaner-controller", "tokencleaner", "bootstrap:TokenCleaner", on_by_default=False),
]

BY_NAME: dict[str, Entry] = {n: e for e in CONTROLLERS for n in (e.name, e.alias)}


def known() -> dict[str, bool]:
    """Every accepted --controllers name -> on under `*` (for flags.select_controllers)."""
    return {n: e.on_by_default for e in CONTROLLERS for n in (e.name, e.alias)}


def aliases() -> dict[str, str]:
    """alias (and canonical name) -> canonical name."""
    return {n: e.name for e in CONTROLLERS for n in (e.name, e.alias)}


def canonical(selected: set[str]) -> list[Entry]:
    """Entries for a selection that may mix canonical names and aliases, in table order."""
    names = {BY_NAME[s].name for s in selected}
    return [e for e in CONTROLLERS if e.name in names]


def load(entry: Entry) -> type:
    module, cls = entry.target.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


@dataclass
class Manager:
    """Runs the selected controllers; `running` and `synced` feed /readyz."""

    client: Client
    options: Options
    recorder: object | None = None

    def __post_init__(self) -> None:
        self.running = False
        self.synced = False
        self.controllers: list = []

    async def _served(self) -> set[tuple[str, str, str]]:
        """(group, version, plural) the API server serves; waits for it to answer."""
        delay = 0.5
        while True:
            try:
                return {(r.group, r.version, r.plural) for r in await discovery.served(self.client)}
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("API discovery failed (%s); retrying in %.1fs", exc or type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    @staticmethod
    async def _supervise(controller: object) -> None:
        """Run a controller; should it ever fail as a whole, log it and start it again (the
        process never exits for one controller's bug)."""
        while True:
            try:
                await controller.run()  # type: ignore[attr-defined]
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s failed; restarting it in 5s", getattr(controller, "name", "?"))
                await asyncio.sleep(5)

    async def run_controllers(self) -> None:
        """One term of leadership: start informers and controllers; stop them when cancelled.
        Returns only by cancellation (losing the lease, shutting down)."""
        factory = InformerFactory(self.client)
        served = await self._served()
        clients = None
        if self.options.use_service_account_credentials:
            clients = ServiceAccountClients(self.client, self.options.kubeconfig)
        ctx = Context(self.client, factory, self.options, self.recorder, clients)
        entries = []
        for e in canonical(self.options.controllers):
            missing = [r for r in getattr(load(e), "requires", ()) if r not in served]
            if missing:
                log.warning("not starting %s: the API server does not serve %s", e.alias,
                            ", ".join("/".join(filter(None, r)) for r in missing))
            else:
                entries.append(e)
        while clients is not None:
            try:
                await clients.prepare([load(e).name for e in entries])
                break
            except ApiStatusError as exc:  # not allowed yet, or the API server away: wait, never crash
                log.warning("service account credentials not ready (%s); retrying", exc)
                await asyncio.sleep(5)
        self.controllers = [load(e)(ctx, workers=self.options.concurrent_syncs) for e in entries]
        log.info("starting controllers: %s", ", ".join(e.alias for e in entries) or "(none)")
        self.running = True
        factory.start()
        try:
            while not await factory.wait_for_sync(timeout=SYNC_PATIENCE):
                late = [i.resource[2] for i in factory.informers.values() if not i.has_synced()]
                log.warning("caches not synced after %ds: %s; starting controllers anyway", SYNC_PATIENCE,
                            ", ".join(late))
                break
            self.synced = True
            log.info("caches synced; controllers running")
            await asyncio.gather(*(self._supervise(c) for c in self.controllers))
            await asyncio.Event().wait()  # no controllers chosen: hold the lease anyway
        finally:
            self.running = self.synced = False
            await factory.stop()
            if clients is not None:
                await clients.close()
            for c in self.controllers:
                c.queue.shutdown()
