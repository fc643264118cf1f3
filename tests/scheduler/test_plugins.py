"""Table-driven tests of the pure filter and score plugins, the failure message and the queue."""

from __future__ import annotations

import asyncio

import pytest

from provisioner.components.scheduler import podinfo
from provisioner.components.scheduler.cache import Cache
from provisioner.components.scheduler.filters import FILTERS
from provisioner.components.scheduler.framework import (
    fit_error_message,
    unresolvable,
    unschedulable,
)
from provisioner.components.scheduler.queue import SchedulingQueue
from provisioner.components.scheduler.scheduler import nodes_to_find
from provisioner.components.scheduler.scores import SCORES

from .conftest import node, pod

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def cache_with(*nodes: dict, placed: tuple = ()) -> Cache:
    c = Cache()
    c.namespace_labels, c.service_selectors = {}, {}
    for n in nodes:
        c.add_node(n)
    for p, where in placed:
        p["spec"]["nodeName"] = where
        c.set_pod(p)
    return c


def run_filter(name: str, p: dict, c: Cache, node_name: str):
    plugin = FILTERS[name]()
    state: dict = {}
    if not plugin.pre_filter(state, p, c):
        return None
    return plugin.filter(state, p, c.nodes[node_name])


def anti(key: str, **labels) -> dict:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}


def aff(key: str, **labels) -> dict:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}


FILTER_CASES = [
    # (id, plugin, pod, nodes, placed pods, node to check, expected reasons or None, unresolvable)
    ("unschedulable node", "NodeUnschedulable", pod("p"), [node("n", unschedulable=True)], (), "n",
     ("node(s) were unschedulable",), True),
    ("unschedulable node tolerated", "NodeUnschedulable",
     pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]),
     [node("n", unschedulable=True)], (), "n", None, False),
    ("other node name", "NodeName", pod("p", nodeName="m"), [node("n")], (), "n",
     ("node(s) didn't match the requested node name",), True),
    ("untolerated taint", "TaintToleration", pod("p"), [node("n", taints=[CP_TAINT])], (), "n",
     ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",), True),
    ("tolerated taint", "TaintToleration",
     pod("p", tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                            "effect": "NoSchedule"}]), [node("n", taints=[CP_TAINT])], (), "n", None, False),
    ("PreferNoSchedule never filters", "TaintToleration", pod("p"),
     [node("n", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}])], (), "n", None, False),
    ("nodeSelector mismatch", "NodeAffinity", pod("p", nodeSelector={"disk": "ssd"}), [node("n")], (), "n",
     ("node(s) didn't match Pod's node affinity/selector",), True),
    ("nodeSelector match", "NodeAffinity", pod("p", nodeSelector={"disk": "ssd"}),
     [node("n", labels={"disk": "ssd"})], (), "n", None, False),
    ("required affinity Gt", "NodeAffinity",
     pod("p", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]}]}]}}}),
     [node("n", labels={"gen": "2"})], (), "n", ("node(s) didn't match Pod's node affinity/selector",), True),
    ("required affinity matchFields", "NodeAffinity",
     pod("p", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}),
     [node("n")], (), "n", None, False),
    ("too little cpu", "NodeResourcesFit", pod("p", cpu="3"), [node("n", cpu="4")], ((pod("q", cpu="2"), "n"),),
     "n", ("Insufficient cpu",), False),
    ("cpu and memory short", "NodeResourcesFit", pod("p", cpu="5", memory="64Gi"), [node("n")], (), "n",
     ("Insufficient cpu", "Insufficient memory"), False),
    ("init container counts", "NodeResourcesFit",
     dict(pod("p", cpu="1"), spec=dict(pod("p", cpu="1")["spec"], initContainers=[
         {"name": "i", "image": "x", "resources": {"requests": {"cpu": "5"}}}])), [node("n")], (), "n",
     ("Insufficient cpu",), False),
    ("overhead counts", "NodeResourcesFit", pod("p", cpu="3500m", overhead={"cpu": "600m"}), [node("n")], (), "n",
     ("Insufficient cpu",), False),
    ("pod count", "NodeResourcesFit", pod("p"), [node("n", pods=1)], ((pod("q"), "n"),), "n",
     ("Too many pods",), False),
    ("fits", "NodeResourcesFit", pod("p", cpu="2"), [node("n")], ((pod("q", cpu="2"), "n"),), "n", None, False),
    ("host port taken", "NodePorts",
     dict(pod("p"), spec={"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
     [node("n")], ((dict(pod("q"), spec={"containers": [{"name": "c", "image": "x", "ports": [
         {"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}]}), "n"),), "n",
     ("node(s) didn't have free ports for the requested pod ports",), False),
    ("host port other protocol", "NodePorts",
     dict(pod("p"), spec={"containers": [{"name": "c", "image": "x", "ports": [
         {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}]}),
     [node("n")], ((dict(pod("q"), spec={"containers": [{"name": "c", "image": "x", "ports": [
         {"containerPort": 53, "hostPort": 53}]}]}), "n"),), "n", None, False),
    ("spread skew exceeded", "PodTopologySpread",
     pod("p", labels={"app": "w"}, topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                              "whenUnsatisfiable": "DoNotSchedule",
                                                              "labelSelector": {"matchLabels": {"app": "w"}}}]),
     [node("a"), node("b")], ((pod("q", labels={"app": "w"}), "a"),), "a",
     ("node(s) didn't match pod topology spread constraints",), False),
    ("spread on the emptier node", "PodTopologySpread",
     pod("p", labels={"app": "w"}, topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                              "whenUnsatisfiable": "DoNotSchedule",
                                                              "labelSelector": {"matchLabels": {"app": "w"}}}]),
     [node("a"), node("b")], ((pod("q", labels={"app": "w"}), "a"),), "b", None, False),
    ("spread key missing", "PodTopologySpread",
     pod("p", labels={"app": "w"}, topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone",
                                                              "whenUnsatisfiable": "DoNotSchedule",
                                                              "labelSelector": {"matchLabels": {"app": "w"}}}]),
     [node("a")], (), "a", ("node(s) didn't match pod topology spread constraints (missing required label)",), True),
    ("anti-affinity to a pod there", "InterPodAffinity",
     pod("p", labels={"app": "db"}, affinity=anti("kubernetes.io/hostname", app="db")),
     [node("a"), node("b")], ((pod("q", labels={"app": "db"}), "a"),), "a",
     ("node(s) didn't match pod anti-affinity rules",), False),
    ("existing pod's anti-affinity", "InterPodAffinity", pod("p", labels={"app": "web"}),
     [node("a")], ((pod("q", labels={"app": "db"}, affinity=anti("kubernetes.io/hostname", app="web")), "a"),), "a",
     ("node(s) didn't satisfy existing pods anti-affinity rules",), False),
    ("affinity unmet", "InterPodAffinity", pod("p", affinity=aff("zone", app="cache")),
     [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})],
     ((pod("q", labels={"app": "cache"}), "a"),), "b", ("node(s) didn't match pod affinity rules",), True),
    ("affinity met in the zone", "InterPodAffinity", pod("p", affinity=aff("zone", app="cache")),
     [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"})],
     ((pod("q", labels={"app": "cache"}), "a"),), "b", None, False),
    ("first of a self-selecting group", "InterPodAffinity",
     pod("p", labels={"app": "cache"}, affinity=aff("zone", app="cache")),
     [node("a", labels={"zone": "z1"})], (), "a", None, False),
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter(case):
    _, plugin, p, nodes, placed, target, reasons, unres = case
    result = run_filter(plugin, p, cache_with(*nodes, placed=placed), target)
    if reasons is None:
        assert result is None
    else:
        assert result is not None and result.reasons == reasons and result.unresolvable == unres


def run_scores(name: str, p: dict, c: Cache, args: dict | None = None) -> dict[str, float]:
    plugin = SCORES[name](args)
    state: dict = {}
    nodes = c.ordered()
    if not plugin.pre_score(state, p, c, nodes):
        return {}
    scores = {ni.name: plugin.score(state, p, ni) for ni in nodes}
    plugin.normalize(state, scores)
    return scores


def best(scores: dict[str, float]) -> str:
    return max(scores, key=scores.get)


def owned(name: str, uid: str = "rs-1") -> dict:
    p = pod(name)
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid,
                                         "controller": True}]
    return p


SCORE_CASES = [
    ("least allocated prefers the emptier node", "NodeResourcesFit", pod("p", cpu="1"),
     [node("busy"), node("idle")], ((pod("q", cpu="3"), "busy"),), "idle"),
    ("most allocated packs", "NodeResourcesFit", pod("p", cpu="1"),
     [node("busy"), node("idle")], ((pod("q", cpu="2"), "busy"),), "busy"),
    ("balanced allocation", "NodeResourcesBalancedAllocation", pod("p", cpu="1", memory="8Gi"),
     [node("cpu-heavy"), node("even")], ((pod("q", cpu="3", memory="1Gi"), "cpu-heavy"),
                                         (pod("r", cpu="1", memory="8Gi"), "even")), "even"),
    ("preferred node affinity", "NodeAffinity",
     pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
         {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}),
     [node("hdd", labels={"disk": "hdd"}), node("ssd", labels={"disk": "ssd"})], (), "ssd"),
    ("PreferNoSchedule taint avoided", "TaintToleration", pod("p"),
     [node("tainted", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("clean")], (), "clean"),
    ("preferred pod affinity", "InterPodAffinity",
     pod("p", affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
         {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}),
     [node("a"), node("b")], ((pod("q", labels={"app": "cache"}), "b"),), "b"),
    ("preferred pod anti-affinity", "InterPodAffinity",
     pod("p", affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
         {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}),
     [node("a"), node("b")], ((pod("q", labels={"app": "web"}), "a"),), "b"),
    ("ScheduleAnyway spread", "PodTopologySpread",
     pod("p", labels={"app": "w"}, topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                              "whenUnsatisfiable": "ScheduleAnyway",
                                                              "labelSelector": {"matchLabels": {"app": "w"}}}]),
     [node("a"), node("b")], ((pod("q", labels={"app": "w"}), "a"),), "b"),
    ("system default spreading of one workload", "PodTopologySpread", owned("p"),
     [node("a"), node("b")], ((owned("q"), "a"), (owned("r", uid="other"), "b"), (owned("s", uid="other"), "b")),
     "b"),
    ("image locality", "ImageLocality", pod("p"),
     [node("a"), node("b", images=[{"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 300 * 2**20}])], (), "b"),
]


@pytest.mark.parametrize("case", SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_score(case):
    name, plugin, p, nodes, placed, winner = case
    args = {"scoringStrategy": {"type": "MostAllocated"}} if "most allocated" in name else None
    scores = run_scores(plugin, p, cache_with(*nodes, placed=placed), args)
    assert best(scores) == winner, scores
    assert all(0 <= s <= 100 for s in scores.values()), scores


def test_fit_error_message_reads_as_kube_schedulers():
    failures = {"cp": unresolvable("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
                "w1": unschedulable("Insufficient cpu"), "w2": unschedulable("Insufficient cpu")}
    assert fit_error_message(3, failures) == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                                              "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu.")
    assert fit_error_message(0, {}) == "0/0 nodes are available:"


@pytest.mark.parametrize("total,expected", [(50, 50), (100, 100), (1000, 420), (5000, 500), (20000, 1000)])
def test_nodes_to_find_follows_the_adaptive_percentage(total, expected):
    assert nodes_to_find(total, 0) == expected


REQUEST_CASES = [
    ("containers add up", {"containers": [{"resources": {"requests": {"cpu": "100m"}}},
                                          {"resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}]},
     {"cpu": 300, "memory": 2**30}),
    ("limits stand in for requests", {"containers": [{"resources": {"limits": {"cpu": "1"}}}]}, {"cpu": 1000}),
    ("largest init container wins", {"containers": [{"resources": {"requests": {"cpu": "100m"}}}],
                                     "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}, {"cpu": 2000}),
    ("sidecars run alongside", {"containers": [{"resources": {"requests": {"cpu": "1"}}}],
                                "initContainers": [{"restartPolicy": "Always",
                                                    "resources": {"requests": {"cpu": "500m"}}}]}, {"cpu": 1500}),
    ("overhead added", {"containers": [{"resources": {"requests": {"cpu": "1"}}}], "overhead": {"cpu": "250m"}},
     {"cpu": 1250}),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_pod_requests(case):
    _, spec, expected = case
    assert podinfo.pod_requests({"spec": spec}) == expected


def test_queue_orders_by_priority_and_backs_off_doubling_to_the_maximum():
    async def main():
        q = SchedulingQueue(initial_backoff=1, max_backoff=10)
        assert [q.backoff_for(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
        low, high = pod("low"), pod("high", priority=1000)
        q.add(low)
        q.add(high)
        assert (await q.pop())["metadata"]["name"] == "high"
        q.requeue_unschedulable(high)  # parked: no cluster change since it was tried
        assert q.counts()["unschedulable"] == 1
        assert (await q.pop())["metadata"]["name"] == "low"
        q.move_all()  # e.g. a node was added: high comes back, after its 1 s backoff
        assert q.counts()["backoff"] == 1
        got = await asyncio.wait_for(q.pop(), 5)
        assert got["metadata"]["name"] == "high"
    asyncio.run(main())


def test_identical_pods_share_cached_results_that_follow_each_placement():
    from provisioner.components.scheduler.config import SchedulerConfig
    from provisioner.components.scheduler.scheduler import FitError, Scheduler

    async def main():
        s = Scheduler(client=None, config=SchedulerConfig())
        for name in ("a", "b"):
            s._node_changed(node(name, cpu="1"))
        prof = s.profiles["default-scheduler"]
        placed = []
        for i in range(2):
            p = pod(f"p{i}", cpu="600m")
            placed.append(s.find_node(prof, p))
            s.cache.assume(p, placed[-1])
        assert sorted(placed) == ["a", "b"]
        assert len(s.equivalence.classes) == 1  # both pods used one class
        with pytest.raises(FitError) as err:
            s.find_node(prof, pod("p2", cpu="600m"))
        assert str(err.value) == "0/2 nodes are available: 2 Insufficient cpu."
        s.cache.forget(pod("p0", cpu="600m"))  # room again on one node: the cached "no" must not stick
        assert s.find_node(prof, pod("p3", cpu="600m")) == placed[0]
    asyncio.run(main())


def test_pods_with_scheduling_gates_wait_until_the_gates_are_removed_and_other_schedulers_pods_are_ignored():
    from provisioner.components.scheduler.config import SchedulerConfig
    from provisioner.components.scheduler.scheduler import Scheduler

    async def main():
        s = Scheduler(client=None, config=SchedulerConfig())
        gated = pod("g", schedulingGates=[{"name": "example.com/quota"}])
        s._pod_added(gated)
        s._pod_added(pod("other", schedulerName="my-scheduler"))
        assert len(s.queue) == 0
        s._pod_added(pod("g"), old=gated)  # the gate removed
        assert s.queue.counts()["active"] == 1
    asyncio.run(main())


def preempt(p: dict, cache: Cache):
    from provisioner.components.scheduler import preemption
    from provisioner.components.scheduler.config import SchedulerConfig
    from provisioner.components.scheduler.scheduler import FitError, Scheduler

    s = Scheduler(client=None, config=SchedulerConfig())
    s.cache = cache
    prof = s.profiles["default-scheduler"]
    with pytest.raises(FitError) as err:
        s.find_node(prof, p)

    def fits(trial):
        view = preemption.WhatIf(cache, trial)
        state: dict = {}
        active = [f for f in prof.filters if f.pre_filter(state, p, view)]
        return s.filter_node(state, active, p, trial) is None
    return preemption.find(p, cache, err.value.failures, fits)


def test_preemption_evicts_the_fewest_least_important_pods():
    async def main():
        c = cache_with(node("a", cpu="2"), node("b", cpu="2"), placed=(
            (pod("a-important", cpu="900m", priority=100), "a"), (pod("a-minor", cpu="900m", priority=5), "a"),
            (pod("b-1", cpu="900m", priority=50), "b"), (pod("b-2", cpu="900m", priority=50), "b")))
        candidate, message = preempt(pod("urgent", cpu="1", priority=1000), c)
        assert candidate.node == "a" and [v["metadata"]["name"] for v in candidate.victims] == ["a-minor"]
        candidate, message = preempt(pod("meek", cpu="1", priority=1), c)
        assert candidate is None
        assert message == "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod"
    asyncio.run(main())


def test_preemption_removes_a_pod_whose_presence_breaks_the_anti_affinity():
    async def main():
        c = cache_with(node("a"), placed=((pod("old-db", labels={"app": "db"}, priority=1), "a"),))
        candidate, _ = preempt(pod("new-db", priority=100, affinity=anti("kubernetes.io/hostname", app="db")), c)
        assert candidate is not None and [v["metadata"]["name"] for v in candidate.victims] == ["old-db"]
    asyncio.run(main())


def test_status_only_updates_do_not_retry_an_unschedulable_pod_but_spec_changes_do():
    from provisioner.components.scheduler.config import SchedulerConfig
    from provisioner.components.scheduler.scheduler import Scheduler

    async def main():
        s = Scheduler(client=None, config=SchedulerConfig())
        p = pod("p", nodeSelector={"disk": "ssd"})
        s._pod_added(p)
        popped = await s.queue.pop()
        s.queue.requeue_unschedulable(popped)
        with_condition = dict(p, status={"conditions": [{"type": "PodScheduled", "status": "False"}]})
        s._pod_added(with_condition, old=p)  # the scheduler's own status write coming back
        assert s.queue.counts()["unschedulable"] == 1
        relabelled = dict(with_condition, spec=dict(p["spec"], nodeSelector={}))
        s._pod_added(relabelled, old=with_condition)
        assert s.queue.counts()["unschedulable"] == 0
    asyncio.run(main())
