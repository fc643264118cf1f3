"""The scheduling loop: take the next pending pod, filter and score nodes with the profile's
plugins, assume the pod on the best node and bind it in the background.

Reads the cluster through shared informers (nodes, pods, namespaces, services) and writes only
bindings, pod status (PodScheduled condition, nominatedNodeName), victim deletions and events.
One `Scheduler` serves every profile of the configuration; pods naming another schedulerName are
left alone. The cycle itself never awaits, so the cache it reads cannot change under it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.events import EventRecorder
from provisioner.components.api.informer import InformerFactory
from provisioner.components.api.objects import now

from . import metrics, preemption
from .cache import TERMINAL_PHASES, Cache, pod_key
from .config import Profile, SchedulerConfig
from .equivalence import EquivalenceCache
from .eventpacing import EventPacer
from .filters import FILTERS
from .framework import Failure, Plugin, fit_error_message
from .queue import SchedulingQueue
from .scores import SCORES

log = logging.getLogger(__name__)

MIN_FEASIBLE_NODES = 100  # kube-scheduler stops filtering once this many (or the percentage) fit
BIND_CONCURRENCY = 32


class FitError(Exception):
    def __init__(self, pod: dict, total: int, failures: dict[str, Failure]) -> None:
        super().__init__(fit_error_message(total, failures))
        self.pod, self.total, self.failures = pod, total, failures


class BuiltProfile:
    """A profile's plugin instances, in order, with their score weights."""

    def __init__(self, profile: Profile, global_percentage: int) -> None:
        self.profile = profile
        self.name = profile.scheduler_name
        self.filters = [FILTERS[n](profile.plugin_args.get(n)) for n in profile.filters]
        self.scores = [(SCORES[n](profile.plugin_args.get(n)), w) for n, w in profile.scores.items()]
        self.percentage = profile.percentage_of_nodes_to_score or global_percentage


def nodes_to_find(total: int, percentage: int) -> int:
    """kube-scheduler's adaptive percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5%."""
    if total < MIN_FEASIBLE_NODES or percentage >= 100:
        return total
    if not percentage:
        percentage = max(5, 50 - total // 125)
    return max(MIN_FEASIBLE_NODES, total * percentage // 100)


class Scheduler:
    def __init__(self, client: Client, config: SchedulerConfig) -> None:
        self.client = client
        self.config = config
        # events name the profile that acted as their source, as kube-scheduler's do
        self.recorders = {p.scheduler_name: EventRecorder(client, p.scheduler_name) for p in config.profiles}
        self.cache = Cache()
        self.cache.namespace_labels = {}
        self.cache.service_selectors = {}
        self.queue = SchedulingQueue(config.initial_backoff, config.max_backoff)
        self.profiles = {p.scheduler_name: BuiltProfile(p, config.percentage_of_nodes_to_score)
                         for p in config.profiles}
        self.next_start = 0
        self.equivalence = EquivalenceCache()
        self.binds = asyncio.Semaphore(BIND_CONCURRENCY)
        self.binding = 0  # bindings being written: Scheduled events wait behind them (eventpacing.py)
        self.pacer = EventPacer(lambda: self.binding > 0)
        self.tasks: set[asyncio.Task] = set()
        self.pod_informer = None

    # -- informers --------------------------------------------------------------------------------
    def register(self, factory: InformerFactory) -> None:
        nodes = factory.informer("", "v1", "nodes")
        nodes.add_handler(self._node_changed, lambda old, new: self._node_changed(new, old), self._node_deleted)
        self.pod_informer = pods = factory.informer("", "v1", "pods")
        pods.add_handler(self._pod_added, lambda old, new: self._pod_added(new, old), self._pod_deleted)
        factory.informer("", "v1", "namespaces").add_handler(
            self._ns_changed, lambda old, new: self._ns_changed(new),
            lambda ns: self.cache.namespace_labels.pop(ns["metadata"]["name"], None))
        factory.informer("", "v1", "services").add_handler(
            self._svc_changed, lambda old, new: self._svc_changed(new), lambda s: self._svc_changed(s, gone=True))

    def _node_changed(self, node: dict, old: dict | None = None) -> None:
        self.cache.add_node(node)
        self.equivalence.clear()
        if old is None or self._node_relevant_change(old, node):
            self.queue.move_all()

    @staticmethod
    def _node_relevant_change(old: dict, new: dict) -> bool:
        def view(n: dict) -> tuple:
            return ((n.get("metadata") or {}).get("labels"), (n.get("spec") or {}).get("taints"),
                    (n.get("spec") or {}).get("unschedulable"), (n.get("status") or {}).get("allocatable"))
        return view(old) != view(new)

    def _node_deleted(self, node: dict) -> None:
        self.cache.remove_node(node)
        self.equivalence.clear()

    def _ns_changed(self, ns: dict) -> None:
        self.cache.namespace_labels[ns["metadata"]["name"]] = (ns.get("metadata") or {}).get("labels") or {}

    def _svc_changed(self, svc: dict, gone: bool = False) -> None:
        per_ns = self.cache.service_selectors.setdefault(svc["metadata"].get("namespace", ""), {})
        if gone:
            per_ns.pop(svc["metadata"]["name"], None)
        else:
            per_ns[svc["metadata"]["name"]] = (svc.get("spec") or {}).get("selector") or {}

    def _ours(self, pod: dict) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or "default-scheduler") in self.profiles

    def _pod_added(self, pod: dict, old: dict | None = None) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            self.cache.set_pod(pod)
            self.queue.done(pod)
            if old is None or not (old.get("spec") or {}).get("nodeName"):
                if self.cache.affinity_pods or any(self.cache.nominated.values()):
                    self.queue.move_all(lambda p: bool((p.get("spec") or {}).get("affinity")))
            elif (pod.get("status") or {}).get("phase") in TERMINAL_PHASES and \
                    (old.get("status") or {}).get("phase") not in TERMINAL_PHASES:
                self.queue.move_all()  # a pod finished: its room is free
            return
        if not self._ours(pod) or pod["metadata"].get("deletionTimestamp"):
            return
        if spec.get("schedulingGates"):  # not ready to be scheduled until every gate is removed
            self.queue.delete(pod)
            return
        if old is None:
            self.queue.add(pod)
        elif self._spec_changed(old, pod):  # our own status writes must not trigger retries
            self.queue.update(pod)

    @staticmethod
    def _spec_changed(old: dict, new: dict) -> bool:
        def view(p: dict) -> tuple:
            meta = p.get("metadata") or {}
            return p.get("spec"), meta.get("labels"), meta.get("annotations")
        return view(old) != view(new)

    def _pod_deleted(self, pod: dict) -> None:
        self.queue.delete(pod)
        if (pod.get("spec") or {}).get("nodeName") or pod_key(pod) in self.cache.pod_node:
            self.cache.remove_pod(pod)
            self.queue.move_all()
        else:
            self.cache.remove_nominated(pod)

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            pod = await self.queue.pop()
            try:
                self.schedule_one(pod)
            except Exception:  # one pod's bad luck must not stop scheduling for everyone
                log.exception("scheduling %s failed", pod_key(pod))
                self.queue.requeue_error(pod)
            await asyncio.sleep(0)  # let informer events in between pods

    async def stop_work(self) -> None:
        """Leadership lost or shutting down: stop bindings and preemptions in flight, forget what
        was assumed but not bound, and put every still-pending pod back in line for the next term."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for key in list(self.cache.assumed):
            node = self.cache.pod_node.get(key)
            entry = self.cache.nodes[node].pods.get(key) if node in self.cache.nodes else None
            if entry is not None:
                self.cache.forget(entry.pod)
        if self.pod_informer is not None:
            for pod in self.pod_informer.list():
                if not (pod.get("spec") or {}).get("nodeName") and self._ours(pod) \
                        and not pod["metadata"].get("deletionTimestamp"):
                    self.queue.add(pod)

    async def close(self) -> None:
        await self.pacer.close()
        await asyncio.gather(*(r.close() for r in self.recorders.values()))

    def current(self, pod: dict) -> dict | None:
        """The pod as the informer knows it now (None: deleted)."""
        if self.pod_informer is None:
            return pod
        return self.pod_informer.get(pod_key(pod))

    def schedule_one(self, pod: dict) -> None:
        latest = self.current(pod)
        if latest is None or (latest.get("spec") or {}).get("nodeName") or latest["metadata"].get("deletionTimestamp"):
            self.queue.done(pod)
            return
        pod = latest
        profile = self.profiles.get((pod.get("spec") or {}).get("schedulerName") or "default-scheduler")
        if profile is None:
            self.queue.done(pod)
            return
        started = time.perf_counter()
        try:
            node = self.find_node(profile, pod)
        except FitError as err:
            metrics.attempts.labels("unschedulable", profile.name).inc()
            self._unschedulable(profile, pod, err)
            metrics.attempt_duration.labels("unschedulable", profile.name).observe(time.perf_counter() - started)
            return
        metrics.attempts.labels("scheduled", profile.name).inc()
        metrics.attempt_duration.labels("scheduled", profile.name).observe(time.perf_counter() - started)
        self.cache.assume(pod, node)
        self.cache.remove_nominated(pod)
        self.queue.done(pod)
        self._spawn(self._bind(profile, pod, node))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- filtering and scoring ---------------------------------------------------------------------
    def run_filters(self, profile: BuiltProfile, pod: dict) -> tuple[dict, list]:
        state: dict = {}
        active = [p for p in profile.filters if p.pre_filter(state, pod, self.cache)]
        return state, active

    @staticmethod
    def filter_node(state: dict, active: list, pod: dict, ni) -> Failure | None:
        for plugin in active:
            failure = plugin.filter(state, pod, ni)
            if failure is not None:
                return failure
        return None

    def find_node(self, profile: BuiltProfile, pod: dict) -> str:
        nodes = self.cache.ordered()
        if not nodes:
            raise FitError(pod, 0, {})
        state, active = self.run_filters(profile, pod)
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated in self.cache.nodes and self.filter_node(state, active, pod, self.cache.nodes[nominated]) is None:
            return nominated  # the node preemption made room on
        scorers = [(p, w) for p, w in profile.scores if p.pre_score(state, pod, self.cache, nodes)]
        eq = self.equivalence.entries(profile.name, pod, active, [p for p, _ in scorers],
                                      any(self.cache.nominated.values()))
        wanted = nodes_to_find(len(nodes), profile.percentage)
        feasible, failures = [], {}
        total = len(nodes)
        start = self.next_start % total
        checked = 0
        for i in range(total):
            ni = nodes[(start + i) % total]
            checked += 1
            if eq is None:
                failure = self.filter_node(state, active, pod, ni)
            else:
                entry = eq.get(ni.name)
                if entry is None or entry[0] != ni.version:
                    entry = eq[ni.name] = [ni.version, self.filter_node(state, active, pod, ni), None]
                failure = entry[1]
            if failure is None:
                feasible.append(ni)
                if len(feasible) >= wanted:
                    break
            else:
                failures[ni.name] = failure
        self.next_start = (start + checked) % total
        if not feasible:
            raise FitError(pod, total, failures)
        if len(feasible) == 1:
            return feasible[0].name
        return self.select_host(self.score(state, pod, feasible, scorers, eq))

    def score(self, state: dict, pod: dict, feasible: list, scorers: list, eq: dict | None) -> dict[str, float]:
        """Weighted sum of each plugin's normalized score (raw scores reused from the equivalence cache)."""
        if eq is None:
            raws = [tuple(p.score(state, pod, ni) for p, _ in scorers) for ni in feasible]
        else:
            raws = []
            for ni in feasible:
                entry = eq[ni.name]
                if entry[2] is None:
                    entry[2] = tuple(p.score(state, pod, ni) for p, _ in scorers)
                raws.append(entry[2])
        totals = [0.0] * len(feasible)
        for i, (plugin, weight) in enumerate(scorers):
            if type(plugin).normalize is Plugin.normalize:  # raw scores are final: add them directly
                for j, raw in enumerate(raws):
                    totals[j] += raw[i] * weight
                continue
            scores = {feasible[j].name: raw[i] for j, raw in enumerate(raws)}
            plugin.normalize(state, scores)
            for j, ni in enumerate(feasible):
                totals[j] += scores[ni.name] * weight
        return {ni.name: t for ni, t in zip(feasible, totals)}

    @staticmethod
    def select_host(totals: dict[str, float]) -> str:
        """The best score; ties broken at random so equal nodes share the load."""
        best = max(totals.values())
        return random.choice([name for name, s in totals.items() if s == best])

    # -- outcomes ----------------------------------------------------------------------------------
    async def _bind(self, profile: BuiltProfile, pod: dict, node: str) -> None:
        self.binding += 1
        try:
            await self._write_binding(profile, pod, node)
        finally:
            self.binding -= 1

    async def _write_binding(self, profile: BuiltProfile, pod: dict, node: str) -> None:
        async with self.binds:
            try:
                await self.client.bind(pod, node)
            except Exception as exc:
                self.cache.forget(pod)
                if isinstance(exc, ApiStatusError) and exc.code in (404, 409) and self.current(pod) is None:
                    return  # deleted meanwhile
                log.warning("binding %s to %s failed: %s", pod_key(pod), node, exc)
                self.recorders[profile.name].record_event(pod, "Warning", "FailedScheduling",
                                                          f"Binding rejected: {exc}")
                self.queue.add(pod)
                self.queue.requeue_error(pod)
                return
        metrics.bound.labels(profile.name).inc()
        self.pacer.record(self.recorders[profile.name], pod, "Normal", "Scheduled",
                          f"Successfully assigned {pod_key(pod)} to {node}")

    def _unschedulable(self, profile: BuiltProfile, pod: dict, err: FitError) -> None:
        message = str(err)
        nominate = None
        if profile.profile.preemption and err.failures:
            if preemption.eligible(pod, self.cache):
                def fits(trial) -> bool:  # the pod's pre-filters see the trial node in place of the real one
                    view = preemption.WhatIf(self.cache, trial)
                    state: dict = {}
                    active = [p for p in profile.filters if p.pre_filter(state, pod, view)]
                    return self.filter_node(state, active, pod, trial) is None
                candidate, post = preemption.find(pod, self.cache, err.failures, fits)
                if candidate is not None:
                    nominate = candidate.node
                    self.cache.nominate(pod, candidate.node)
                    metrics.preemption_attempts.inc()
                    metrics.preemption_victims.observe(len(candidate.victims))
                    self._spawn(self._preempt(profile, pod, candidate))
                else:
                    message = fit_error_message(err.total, err.failures, post)
        log.info("%s unschedulable: %s", pod_key(pod), message)
        self.recorders[profile.name].record_event(pod, "Warning", "FailedScheduling", message)
        self._spawn(self._set_condition(pod, message, nominate))
        self.queue.requeue_unschedulable(pod)

    async def _set_condition(self, pod: dict, message: str, nominated: str | None) -> None:
        status = pod.get("status") or {}
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
        patch: dict = {}
        if (current.get("status"), current.get("reason"), current.get("message")) != ("False", "Unschedulable", message):
            patch["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": message, "lastProbeTime": None,
                                    "lastTransitionTime": current.get("lastTransitionTime")
                                    if current.get("status") == "False" else now()}]
        if nominated and status.get("nominatedNodeName") != nominated:
            patch["nominatedNodeName"] = nominated
        if not patch:
            return
        meta = pod["metadata"]
        try:
            await self.client.patch_status("", "v1", "pods", meta["name"], {"status": patch}, meta["namespace"])
        except Exception as exc:  # the event already says it; the next attempt writes the condition again
            log.info("status of %s not updated: %s", pod_key(pod), exc)

    async def _preempt(self, profile: BuiltProfile, pod: dict, candidate: preemption.Candidate) -> None:
        for victim in candidate.victims:
            meta = victim["metadata"]
            try:
                await self.client.patch_status("", "v1", "pods", meta["name"], {"status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": f"{profile.name}: preempting to accommodate a higher priority pod",
                    "lastTransitionTime": now()}]}}, meta["namespace"])
                await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"], uid=meta.get("uid"))
            except ApiStatusError as exc:
                if exc.code != 404:
                    log.warning("preempting %s failed: %s", pod_key(victim), exc)
                continue
            self.recorders[profile.name].record_event(victim, "Normal", "Preempted",
                                       f"Preempted by pod {pod['metadata'].get('uid', '')} on node {candidate.node}")
