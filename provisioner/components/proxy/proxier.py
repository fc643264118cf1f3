"""proxy/proxier: keeps iptables in step with Services and EndpointSlices.

Informer handlers record which Services changed and wake the sync loop. A partial sync rewrites the
top-level chains and only the changed Services' chains (removing the chains they no longer need);
a full sync rewrites every chain and removes any stale one found in iptables. Full syncs happen at
start, every ``sync_period``, after any failure (iptables-restore's message is logged and the next
try is full) and when the canary chain disappeared. Syncs are at least ``min_sync_period`` apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from . import iptables
from .model import ServicePort, service_ports, slice_service
from .rules import NodeContext, restore_text, service_chains, top_level

log = logging.getLogger("kube-proxy")
BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
           4.096, 8.192, 16.384)


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sync = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                              "SyncProxyRules latency in seconds", buckets=BUCKETS, registry=r)
        self.full = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                              "SyncProxyRules latency in seconds for full resyncs",
                              buckets=BUCKETS, registry=r)
        self.partial = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                 "SyncProxyRules latency in seconds for partial resyncs",
                                 buckets=BUCKETS, registry=r)
        self.last = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                          "The last time proxy rules were successfully synced", registry=r)
        self.failures = Counter("kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
                                "Cumulative proxy iptables restore failures", registry=r)
        self.rules = Gauge("kubeproxy_sync_proxy_rules_iptables_total",
                           "Total number of iptables rules owned by kube-proxy", ["table"],
                           registry=r)


@dataclass
class SyncPlan:
    full: bool
    payload: str
    written: dict[str, set[str]]      # service key -> the nat chains it has after this sync
    targets: set[str]                 # services whose chains this sync rewrites
    changes: set[str]                 # the changes it covers
    started: float


class Proxier:
    def __init__(self, ctx: NodeContext, sync_period: float = 30.0, min_sync_period: float = 1.0,
                 restore: Callable[[str], None] = iptables.restore,
                 existing_chains: Callable[[], set[str]] = iptables.service_chains,
                 metrics: Metrics | None = None):
        self.ctx = ctx
        self.sync_period = sync_period
        self.min_sync_period = min_sync_period
        self.restore = restore
        self.existing_chains = existing_chains
        self.metrics = metrics or Metrics()
        self.services: dict[str, dict] = {}
        self.slices: dict[str, dict[str, dict]] = {}       # service key -> slice key -> slice
        self.changed: set[str] = set()
        self.written: dict[str, set[str]] = {}             # service key -> its nat chains
        self._ports: dict[str, list[ServicePort]] = {}     # service key -> ports, until it changes
        self.needs_full = True
        self.last_sync = 0.0           # monotonic, of the last successful sync
        self.pending_since: float | None = None
        self.wake = asyncio.Event() if _has_loop() else None

    # -- informer handlers -----------------------------------------------------------------------

    def service_changed(self, service: dict, deleted: bool = False) -> None:
        key = _key(service)
        if deleted:
            self.services.pop(key, None)
        else:
            self.services[key] = service
        self._mark(key)

    def slice_changed(self, endpoint_slice: dict, deleted: bool = False) -> None:
        key = slice_service(endpoint_slice)
        if key is None:
            return
        slices = self.slices.setdefault(key, {})
        if deleted:
            slices.pop(_key(endpoint_slice), None)
        else:
            slices[_key(endpoint_slice)] = endpoint_slice
        self._mark(key)

    def _mark(self, key: str) -> None:
        self.changed.add(key)
        self._ports.pop(key, None)
        if self.pending_since is None:
            self.pending_since = time.monotonic()
        if self.wake is not None:
            self.wake.set()

    # -- syncing -----------------------------------------------------------------------------------

    def ports_of(self, key: str) -> list[ServicePort]:
        if key not in self._ports:
            service = self.services.get(key)
            self._ports[key] = service_ports(service, list(self.slices.get(key, {}).values())) \
                if service else []
        return self._ports[key]

    def build(self, full: bool) -> tuple[str, dict[str, set[str]], set[str]]:
        """(payload, chains written per service, services synced) for a full or partial sync."""
        targets = set(self.services) | set(self.written) if full else set(self.changed)
        all_ports = [sp for key in sorted(self.services) for sp in self.ports_of(key)]
        nat, filt = top_level(all_ports, self.ctx)
        written: dict[str, set[str]] = {}
        for key in sorted(targets):
            chains: dict[str, list[str]] = {}
            for sp in self.ports_of(key):
                chains.update(service_chains(sp, self.ctx))
            nat.update(chains)
            written[key] = set(chains)
        stale: set[str] = set()
        for key in targets:
            stale |= self.written.get(key, set()) - written[key]
        if full:
            stale |= self.existing_chains() - set(nat)
        self.metrics.rules.labels("nat").set(sum(len(rules) for rules in nat.values()))
        self.metrics.rules.labels("filter").set(sum(len(rules) for rules in filt.values()))
        return restore_text(nat, filt, stale), written, targets

    def plan(self, full: bool) -> SyncPlan:
        """Everything one sync writes, computed from the current state (in the caller's thread:
        the handlers change that state, so this must not run beside them)."""
        full = full or self.needs_full
        try:
            payload, written, targets = self.build(full)
        except Exception:
            self.needs_full = True
            raise
        return SyncPlan(full, payload, written, targets, set(self.changed), time.monotonic())

    def commit(self, plan: SyncPlan) -> None:
        for key in plan.targets:
            if plan.written.get(key):
                self.written[key] = plan.written[key]
            else:
                self.written.pop(key, None)
        self.changed -= plan.changes
        self.needs_full = False
        self.last_sync = time.monotonic()
        if not self.changed:
            self.pending_since = None
        elapsed = self.last_sync - plan.started
        (self.metrics.full if plan.full else self.metrics.partial).observe(elapsed)
        self.metrics.sync.observe(elapsed)
        self.metrics.last.set(time.time())
        log.info("synced %s rules for %d services in %.3fs", "all" if plan.full else "changed",
                 len(plan.written), elapsed)

    def failed(self) -> None:
        self.needs_full = True
        self.metrics.failures.inc()

    def sync(self, full: bool = False) -> SyncPlan:
        """One sync, now (blocking); raises IptablesError (and the next sync is full)."""
        plan = self.plan(full)
        try:
            self.restore(plan.payload)
        except Exception:
            self.failed()
            raise
        self.commit(plan)
        return plan

    async def run(self, check_canary: Callable[[], bool] = iptables.canary_present) -> None:
        """The sync loop: on changes (at most every min_sync_period) and full every sync_period."""
        if self.wake is None:
            self.wake = asyncio.Event()
        last_full = 0.0
        backoff = max(self.min_sync_period, 1.0)
        while True:
            timeout = max(0.0, last_full + self.sync_period - time.monotonic())
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            wait = self.last_sync + self.min_sync_period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                self.wake.clear()
            periodic = time.monotonic() - last_full >= self.sync_period
            if periodic and not await asyncio.to_thread(check_canary):
                log.warning("the canary chain is gone (iptables flushed?): full resync")
                await asyncio.to_thread(iptables.ensure_base)
                self.needs_full = True
            full = periodic or self.needs_full
            if not full and not self.changed:
                continue
            try:
                plan = self.plan(full)
                try:
                    await asyncio.to_thread(self.restore, plan.payload)
                except Exception:
                    self.failed()
                    raise
                self.commit(plan)
                backoff = max(self.min_sync_period, 1.0)
                if full:
                    last_full = time.monotonic()
            except Exception as error:                 # noqa: BLE001 - logged, retried in full
                log.error("syncing proxy rules failed, retrying with a full sync: %s", error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                self.wake.set()

    def healthy(self, now: float | None = None) -> bool:
        """kube-proxy's healthz: synced once, and no change waiting longer than 2 sync periods."""
        now = time.monotonic() if now is None else now
        if not self.last_sync:
            return False
        return self.pending_since is None or now - self.pending_since < 2 * self.sync_period


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
