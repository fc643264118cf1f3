"""The horizontal pod autoscaler, hermetically: the replica arithmetic (hpacalc) table-driven, and one
controller pass against a fake API (the only boundary faked: scale subresource, metrics API, status
writes, events) to check what a user reads in `kubectl describe hpa`."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt

import pytest

from provisioner.components.api.client import ApiStatusError
from provisioner.components.controllers import hpa as hpactl
from provisioner.components.controllers import hpacalc
from provisioner.components.controllers.base import Context
from provisioner.components.controllers.hpacalc import PodMetric, Recommendations

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
LONG_AGO = "2026-01-01T11:00:00Z"  # started an hour before NOW: past the CPU initialization period


def pod(name: str, cpu: str | None = "400m", memory: str | None = None, phase: str = "Running", ready: bool = True,
        started: str = LONG_AGO, ready_since: str = "2026-01-01T11:00:10Z", deleting: bool = False,
        labels: dict | None = None) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    p = {"metadata": {"name": name, "namespace": "ns", "labels": labels or {"app": "web"}},
         "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
         "status": {"phase": phase, "startTime": started,
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": ready_since}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = LONG_AGO
    return p


def used(**milli: int) -> dict[str, PodMetric]:
    return {name: PodMetric(v, NOW - dt.timedelta(seconds=5), dt.timedelta(seconds=15)) for name, v in milli.items()}


# -- replica counts for averageUtilization -------------------------------------------------------
@pytest.mark.parametrize("case, current, target, pods, metrics, replicas, utilization", [
    ("double the target doubles the pods", 2, 50, [pod("a"), pod("b")], used(a=400, b=400), 4, 100),
    ("within the 0.1 tolerance nothing changes", 2, 50, [pod("a"), pod("b")], used(a=216, b=216), 2, 54),
    ("just past the tolerance scales", 2, 50, [pod("a"), pod("b")], used(a=232, b=232), 3, 58),
    ("low use scales down", 4, 50, [pod(n) for n in "abcd"], used(a=40, b=40, c=40, d=40), 1, 10),
    ("missing pods count as 0 on a scale-up", 3, 50, [pod("a"), pod("b"), pod("c")], used(a=400, b=400), 4, 100),
    ("missing pods count as their full request on a scale-down", 4, 50, [pod(n) for n in "abcd"],
     used(a=40, b=40, c=40), 3, 10),
    ("a pod that never became ready counts as 0 on a scale-up (CPU)", 3, 50,
     [pod("a"), pod("b"), pod("c", ready=False, ready_since="2026-01-01T11:00:05Z")], used(a=400, b=400, c=400), 4, 100),
    ("a young pod whose sample predates a window since Ready is unready (CPU)", 3, 50,
     [pod("a"), pod("b"), pod("c", started="2026-01-01T11:58:00Z", ready_since="2026-01-01T11:59:55Z")],
     used(a=400, b=400, c=400), 4, 100),
    ("a pending pod is unready; a scale-down ignores it", 3, 50, [pod("a"), pod("b"), pod("c", phase="Pending")],
     used(a=40, b=40), 1, 10),
    ("a pod being deleted or failed is ignored", 3, 50,
     [pod("a"), pod("b", deleting=True), pod("c", phase="Failed")], used(a=400, b=0, c=0), 2, 100),
    ("filling in would flip the direction: stay", 3, 50, [pod("a"), pod("b"), pod("c")], used(a=220, b=220), 3, 55),
])
def test_utilization_replicas(case, current, target, pods, metrics, replicas, utilization):
    got, percent, _raw = hpacalc.resource_replicas(current, target, "cpu", pods, metrics, NOW)
    assert (got, percent) == (replicas, utilization), case


def test_memory_ignores_readiness():
    pods = [pod("a", memory="100Mi"), pod("b", memory="100Mi", ready=False, ready_since="2026-01-01T11:00:05Z")]
    mib = 2 ** 20 * 1000
    got, percent, _ = hpacalc.resource_replicas(2, 50, "memory", pods, used(a=100 * mib, b=100 * mib), NOW)
    assert (got, percent) == (4, 100)


@pytest.mark.parametrize("case, pods, metrics, message", [
    ("no pods", [], used(a=1), "no pods returned by selector while calculating replica count"),
    ("only unready pods have metrics", [pod("a", phase="Pending")], used(a=1),
     "did not receive metrics for targeted pods (pods might be unready)"),
    ("a container without a request", [pod("a", cpu=None)], used(a=100),
     "missing request for cpu in container c of Pod a"),
])
def test_utilization_errors(case, pods, metrics, message):
    with pytest.raises(hpacalc.MetricError) as err:
        hpacalc.resource_replicas(1, 50, "cpu", pods, metrics, NOW)
    assert str(err.value) == message, case


@pytest.mark.parametrize("case, current, pods, metrics, replicas, average", [
    ("twice the average value", 2, [pod("a"), pod("b")], used(a=200_000, b=200_000), 4, 200_000),
    ("within tolerance", 2, [pod("a"), pod("b")], used(a=105_000, b=105_000), 2, 105_000),
    ("missing pods count as the target on a scale-down", 3, [pod("a"), pod("b"), pod("c")],
     used(a=10_000, b=10_000), 2, 10_000),
])
def test_average_value_replicas(case, current, pods, metrics, replicas, average):
    assert hpacalc.plain_replicas(current, 100_000, "cpu", pods, metrics, NOW) == (replicas, average), case


# -- stabilization, limits and policies --------------------------------------------------------------
def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def test_scale_down_waits_for_the_300s_window():
    memory = Recommendations()
    memory.first_seen(5, at(0))
    early = memory.normalize(5, 2, 1, 10, at(60))
    assert (early.replicas, early.able_reason) == (5, "ScaleDownStabilized")
    late = memory.normalize(5, 2, 1, 10, at(301))
    assert (late.replicas, late.able_reason, late.limited) == (2, "ReadyForNewScale", False)


@pytest.mark.parametrize("case, current, desired, low, high, replicas, limited, reason", [
    ("within range", 2, 3, 1, 10, 3, False, "DesiredWithinRange"),
    ("scale-up rate limit: at most double or 4", 1, 10, 1, 20, 4, True, "ScaleUpLimit"),
    ("max replicas", 5, 12, 1, 8, 8, True, "TooManyReplicas"),
    ("min replicas", 3, 0, 2, 8, 2, True, "TooFewReplicas"),
])
def test_limits_without_behavior(case, current, desired, low, high, replicas, limited, reason):
    memory = Recommendations()
    memory.first_seen(0, at(-1000))  # nothing recent to stabilize on
    got = memory.normalize(current, desired, low, high, NOW)
    assert (got.replicas, got.limited, got.limit_reason) == (replicas, limited, reason), case


def test_behavior_pods_policy_limits_each_period():
    behavior = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    memory = Recommendations()
    first = memory.normalize_with_behavior(behavior, 2, 6, 1, 10, at(0))
    assert (first.replicas, first.limit_reason) == (3, "ScaleUpLimit")
    memory.scaled(behavior, 2, 3, at(0))
    again = memory.normalize_with_behavior(behavior, 3, 6, 1, 10, at(10))
    assert again.replicas == 3  # the period's one pod is spent
    later = memory.normalize_with_behavior(behavior, 3, 6, 1, 10, at(61))
    assert later.replicas == 4


@pytest.mark.parametrize("case, scale_down, replicas, reason", [
    ("percent policy halves at most", {"stabilizationWindowSeconds": 0,
                                       "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
     5, "ScaleDownLimit"),
    ("selectPolicy Min takes the smaller change", {"stabilizationWindowSeconds": 0, "selectPolicy": "Min",
                                                   "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60},
                                                                {"type": "Pods", "value": 2, "periodSeconds": 60}]},
     8, "ScaleDownLimit"),
    ("Disabled never scales down", {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}, 10, "ScaleDownLimit"),
    ("the default window holds the recommendation", {}, 10, "DesiredWithinRange"),
])
def test_behavior_scale_down(case, scale_down, replicas, reason):
    memory = Recommendations()
    memory.first_seen(10, at(0))
    got = memory.normalize_with_behavior({"scaleDown": scale_down}, 10, 1, 1, 20, at(1))
    assert (got.replicas, got.limit_reason) == (replicas, reason), case


def test_behavior_scale_up_window_takes_the_lowest_recent():
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 60}}
    memory = Recommendations()
    memory.first_seen(2, at(0))
    got = memory.normalize_with_behavior(behavior, 2, 8, 1, 20, at(30))
    assert (got.replicas, got.able_reason) == (2, "ScaleUpStabilized")


@pytest.mark.parametrize("value, text", [(250, "250m"), (1000, "1"), (0, "0"), (2_000_000_000, "2M"),
                                         (104857600000, "104857600")])
def test_quantities_are_canonical(value, text):
    assert hpactl.format_milli(value) == text


# -- one controller pass against a fake API ------------------------------------------------------
class FakeInformer:
    def __init__(self, objs: list[dict]):
        self.objs = objs

    def add_handler(self, *handlers):
        return None

    def get(self, key):
        return next((o for o in self.objs if f"{o['metadata']['namespace']}/{o['metadata']['name']}" == key), None)

    def by_index(self, _index, ns):
        return [o for o in self.objs if o["metadata"].get("namespace") == ns]


class FakeApi:
    """The API boundary: a Deployment's scale, PodMetrics (or no metrics API), status writes."""

    def __init__(self, replicas: int, metrics: list[dict] | None):
        self.scale = {"kind": "Scale", "metadata": {"name": "web", "namespace": "ns"},
                      "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}}
        self.metrics = metrics
        self.scaled_to: list[int] = []
        self.status: dict | None = None

    async def get(self, group, version, plural, name, ns=None, sub=None):
        assert (group, plural, sub) == ("apps", "deployments", "scale")
        return copy.deepcopy(self.scale)

    async def list(self, group, version, plural, ns=None, **params):
        assert (group, version, plural, params) == ("metrics.k8s.io", "v1beta1", "pods", {"labelSelector": "app=web"})
        if self.metrics is None:
            raise ApiStatusError({"code": 404, "message": "the server could not find the requested resource"})
        return {"items": self.metrics}

    async def replace(self, group, version, plural, obj, ns=None, sub=None):
        self.scaled_to.append(obj["spec"]["replicas"])
        self.scale["spec"]["replicas"] = obj["spec"]["replicas"]
        return obj

    async def update_status(self, group, version, plural, obj, ns=None):
        self.status = copy.deepcopy(obj["status"])
        return obj


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str, str]] = []

    def record_event(self, obj, etype, reason, message):
        self.events.append((etype, reason, message))


def run_pass(api: FakeApi, pods: list[dict], spec: dict | None = None):
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": "ns"},
           "spec": spec or {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                            "minReplicas": 1, "maxReplicas": 10,
                            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                                "type": "Utilization", "averageUtilization": 50}}}]}}
    informers = {"horizontalpodautoscalers": FakeInformer([hpa]), "pods": FakeInformer(pods)}
    recorder = Recorder()
    ctx = Context(api, None, None, recorder)
    ctx.informer = lambda group, version, plural: informers[plural]
    controller = hpactl.HorizontalPodAutoscalerController(ctx)
    asyncio.run(controller.reconcile(copy.deepcopy(hpa), "ns/web"))
    return api.status, recorder.events


def condition(status: dict, ctype: str) -> tuple[str, str]:
    c = next(c for c in status["conditions"] if c["type"] == ctype)
    return c["status"], c["reason"]


def podmetric(name: str, cpu: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}, "timestamp": "2026-01-01T11:59:50Z", "window": "15s",
            "containers": [{"name": "c", "usage": {"cpu": cpu, "memory": "10Mi"}}]}


def test_pass_scales_up_and_reports():
    api = FakeApi(2, [podmetric("a", "400m"), podmetric("b", "400m")])
    status, events = run_pass(api, [pod("a"), pod("b")])
    assert api.scaled_to == [4]
    assert ("Normal", "SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage of request) "
            "above target") in events
    assert (status["currentReplicas"], status["desiredReplicas"]) == (2, 4)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 100, "averageValue": "400m"}}}]
    assert condition(status, "AbleToScale") == ("True", "SucceededRescale")
    assert condition(status, "ScalingActive") == ("True", "ValidMetricFound")
    assert condition(status, "ScalingLimited") == ("False", "DesiredWithinRange")
    assert status["lastScaleTime"]


def test_pass_without_metrics_api_is_failed_get_resource_metric():
    api = FakeApi(2, None)
    status, events = run_pass(api, [pod("a"), pod("b")])
    assert api.scaled_to == []
    assert condition(status, "ScalingActive") == ("False", "FailedGetResourceMetric")
    message = next(c["message"] for c in status["conditions"] if c["type"] == "ScalingActive")
    assert message == ("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to "
                       "get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server "
                       "could not find the requested resource (get pods.metrics.k8s.io)")
    assert [r for _, r, _ in events] == ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
    assert status["currentReplicas"] == 2 and status["currentMetrics"] == [{"type": ""}]


def test_pass_below_min_replicas_scales_without_metrics():
    api = FakeApi(1, None)
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 3, "maxReplicas": 5, "metrics": []}
    status, events = run_pass(api, [], spec)
    assert api.scaled_to == [3]
    assert ("Normal", "SuccessfulRescale", "New size: 3; reason: Current number of replicas below Spec.MinReplicas") \
        in events


def test_pass_unknown_target_kind_is_failed_get_scale():
    api = FakeApi(1, None)
    spec = {"scaleTargetRef": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"}, "maxReplicas": 5}
    status, events = run_pass(api, [], spec)
    assert condition(status, "AbleToScale") == ("False", "FailedGetScale")
    assert events == [("Warning", "FailedGetScale", 'no matches for kind "Widget" in group "example.com"')]
