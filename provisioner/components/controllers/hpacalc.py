"""The horizontal pod autoscaler's arithmetic: pure functions, no I/O (hpa.py does the talking).

What kube-controller-manager's replica calculator and normalization do, in the same order:
- group_pods(): which pods count. Being deleted or Failed: ignored. Pending: unready. No metric:
  missing. For CPU, a pod that is not Ready (or whose sample may still include its start-up burst,
  within the 5-minute CPU initialization period) is unready too.
- resource_replicas() (averageUtilization) and plain_replicas() (averageValue): the usage ratio
  over ready pods; inside the tolerance (0.1) nothing changes. With missing pods, they count as
  using 100% of their request (of the target) on a scale-down and 0 on a scale-up; unready pods as
  0 on a scale-up; the ratio is computed again and a change that would flip direction or fall
  within the tolerance is dropped. Values are in thousandths (millicores, milli-bytes).
- Recommender state (Recommendations): the default 300 s scale-down stabilization window, or, with
  spec.behavior, stabilization windows in both directions and the scaling policies (Pods/Percent
  per period, selectPolicy Max/Min/Disabled) over the scale events this controller made.
Every error message is upstream's text, so the conditions and events read the same.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from provisioner.components.api.quantity import milli

from . import podutil

Obj = dict[str, Any]

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = dt.timedelta(minutes=5)
INITIAL_READINESS_DELAY = dt.timedelta(seconds=30)
DOWNSCALE_STABILIZATION = 300  # seconds, --horizontal-pod-autoscaler-downscale-stabilization
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0  # without spec.behavior

DEFAULT_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                 {"type": "Percent", "value": 100, "periodSeconds": 15}]}
DEFAULT_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


class MetricError(Exception):
    """A metric could not be turned into a replica count (upstream's message)."""


@dataclass(frozen=True)
class PodMetric:
    value: int  # thousandths of the resource, summed over the pod's containers
    timestamp: dt.datetime | None = None
    window: dt.timedelta = dt.timedelta(0)


# -- which pods count -----------------------------------------------------------------------------
def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str,
               now: dt.datetime) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready names, missing names, ignored names), as upstream's groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        if podutil.is_terminating(pod) or status.get("phase") == "Failed":
            ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_unready(pod, metric, now):
            unready.add(name)
            continue
        ready += 1
    return ready, unready, missing, ignored


def _cpu_unready(pod: Obj, metric: PodMetric, now: dt.datetime) -> bool:
    cond = podutil.ready_condition(pod)
    started = podutil.parse_time((pod.get("status") or {}).get("startTime"))
    if cond is None or started is None:
        return True
    since = podutil.parse_time(cond.get("lastTransitionTime")) or started
    if started + CPU_INITIALIZATION_PERIOD > now:
        # young pod: its sample may still hold the start-up burst unless a whole window passed since Ready
        return cond.get("status") == "False" or (metric.timestamp is not None and
                                                  metric.timestamp < since + metric.window)
    # older pod: not ready and never was (its Ready=False came within the initial delay of start)
    return cond.get("status") == "False" and started + INITIAL_READINESS_DELAY > since


def pod_requests(pods: list[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request for `resource` in thousandths (sidecar init containers included); a
    container without one is an error, as utilization has no meaning for it."""
    out = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0
        for c in (spec.get("containers") or []) + sidecars:
            if container and c.get("name") != container:
                continue
            value = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if value is None or milli(value) == 0:
                raise MetricError(f"missing request for {resource} in container {c.get('name')} "
                                  f"of Pod {pod['metadata']['name']}")
            total += milli(value)
        out[pod["metadata"]["name"]] = total
    return out


# -- ratios -----------------------------------------------------------------------------------------
def utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio, current utilization %, raw average value) over pods with both a metric and a request."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name in requests:
            used += metric.value
            requested += requests[name]
            entries += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // entries


def usage_ratio(metrics: dict[str, PodMetric], target: int) -> tuple[float, int]:
    """(usage ratio, average usage) of a plain (averageValue) metric."""
    average = sum(m.value for m in metrics.values()) // len(metrics)
    return average / target, average


def within_tolerance(ratio: float) -> bool:
    return abs(1.0 - ratio) <= TOLERANCE


def _considered(pods: list[Obj], metrics: dict[str, PodMetric], resource: str,
                now: dt.datetime) -> tuple[dict[str, PodMetric], int, set[str], set[str]]:
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    kept = {n: m for n, m in metrics.items() if n not in ignored and n not in unready}
    if not kept:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return kept, ready, unready, missing


def _settle(current: int, ratio: float, new_ratio: float, counted: int) -> int:
    """The shared end of both calculators, once missing and unready pods are filled in."""
    if within_tolerance(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current  # too small a change, or the fill-in flipped the direction
    proposed = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


def resource_replicas(current: int, target_utilization: int, resource: str, pods: list[Obj],
                      metrics: dict[str, PodMetric], now: dt.datetime,
                      container: str = "") -> tuple[int, int, int]:
    """(replicas, utilization %, raw average) for an averageUtilization target."""
    kept, ready, unready, missing = _considered(pods, metrics, resource, now)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(kept, requests, target_utilization)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        return (current if within_tolerance(ratio) else math.ceil(ratio * ready)), utilization, raw
    filled = dict(kept)
    if missing and ratio < 1.0:
        fallback = max(100, target_utilization)
        filled.update({n: PodMetric(requests[n] * fallback // 100) for n in missing})
    elif missing and ratio > 1.0:
        filled.update({n: PodMetric(0) for n in missing})
    if up_with_unready:
        filled.update({n: PodMetric(0) for n in unready})
    new_ratio, _, _ = utilization_ratio(filled, requests, target_utilization)
    return _settle(current, ratio, new_ratio, len(filled)), utilization, raw


def plain_replicas(current: int, target_value: int, resource: str, pods: list[Obj],
                   metrics: dict[str, PodMetric], now: dt.datetime) -> tuple[int, int]:
    """(replicas, average usage) for an averageValue target (thousandths)."""
    kept, ready, unready, missing = _considered(pods, metrics, resource, now)
    ratio, usage = usage_ratio(kept, target_value)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        return (current if within_tolerance(ratio) else math.ceil(ratio * ready)), usage
    filled = dict(kept)
    if missing:
        fill = target_value if ratio < 1.0 else 0
        filled.update({n: PodMetric(fill) for n in missing})
    if up_with_unready:
        filled.update({n: PodMetric(0) for n in unready})
    new_ratio, _ = usage_ratio(filled, target_value)
    return _settle(current, ratio, new_ratio, len(filled)), usage


# -- normalization: stabilization, limits, policies ------------------------------------------------
@dataclass
class Limited:
    replicas: int
    able_reason: str  # AbleToScale=True reason: ReadyForNewScale, ScaleUpStabilized, ScaleDownStabilized
    able_message: str
    limited: bool  # ScalingLimited status
    limit_reason: str
    limit_message: str


WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
READY = ("ReadyForNewScale", "recommended size matches current size")
DOWN_STABILIZED = ("ScaleDownStabilized",
                   "recent recommendations were higher than current one, applying the highest recent recommendation")
UP_STABILIZED = ("ScaleUpStabilized",
                 "recent recommendations were lower than current one, applying the lowest recent recommendation")
SCALE_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")


def rules(behavior: Obj | None, direction: str) -> Obj:
    """spec.behavior.scaleUp/scaleDown with kube's defaults filled in (the scale-down window
    defaults to the controller's 300 s)."""
    default = DEFAULT_SCALE_UP if direction == "scaleUp" else DEFAULT_SCALE_DOWN
    given = (behavior or {}).get(direction) or {}
    out = {k: given.get(k) if given.get(k) is not None else v for k, v in default.items()}
    window = given.get("stabilizationWindowSeconds")
    out["stabilizationWindowSeconds"] = window if window is not None else (
        default.get("stabilizationWindowSeconds", DOWNSCALE_STABILIZATION))
    return out


@dataclass
class Recommendations:
    """One HPA's memory: recent recommendations and the scale events this controller made."""

    samples: list[tuple[int, dt.datetime]] = field(default_factory=list)
    ups: list[tuple[int, dt.datetime]] = field(default_factory=list)
    downs: list[tuple[int, dt.datetime]] = field(default_factory=list)

    def first_seen(self, current: int, now: dt.datetime) -> None:
        """A new HPA (or a restarted controller) starts as if `current` had just been recommended,
        so nothing scales down before a full window of evidence."""
        if not self.samples:
            self.samples.append((current, now))

    def _record(self, recommendation: int, now: dt.datetime, stale: Any) -> None:
        for i, (_, when) in enumerate(self.samples):
            if stale(when):
                self.samples[i] = (recommendation, now)
                return
        self.samples.append((recommendation, now))

    # no spec.behavior: only the scale-down window, and the fixed scale-up limit
    def normalize(self, current: int, desired: int, low: int, high: int, now: dt.datetime,
                  window: int = DOWNSCALE_STABILIZATION) -> Limited:
        cutoff = now - dt.timedelta(seconds=window)
        stabilized = max([desired] + [r for r, when in self.samples if when >= cutoff])
        self._record(desired, now, lambda when: when < cutoff)
        able = READY if stabilized == desired else DOWN_STABILIZED
        up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        ceiling, why = (up_limit, SCALE_UP_LIMIT) if high > up_limit else (high, TOO_MANY)
        if stabilized < low:
            replicas, why = low, TOO_FEW
        elif stabilized > ceiling:
            replicas = ceiling
        else:
            replicas, why = stabilized, WITHIN
        return Limited(replicas, *able, replicas != stabilized, *why)

    # with spec.behavior
    def normalize_with_behavior(self, behavior: Obj, current: int, desired: int, low: int, high: int,
                                now: dt.datetime) -> Limited:
        up, down = rules(behavior, "scaleUp"), rules(behavior, "scaleDown")
        up_cut = now - dt.timedelta(seconds=up["stabilizationWindowSeconds"])
        down_cut = now - dt.timedelta(seconds=down["stabilizationWindowSeconds"])
        up_rec = min([desired] + [r for r, when in self.samples if when > up_cut])
        down_rec = max([desired] + [r for r, when in self.samples if when > down_cut])
        stabilized = min(max(current, up_rec), down_rec)
        self._record(desired, now, lambda when: when < up_cut and when < down_cut)
        if stabilized == desired:
            able = READY
        else:
            able = UP_STABILIZED if desired >= current else DOWN_STABILIZED
        replicas, why = stabilized, WITHIN
        if stabilized > current:
            limit = max(self._up_limit(current, up, now), current)
            ceiling, reason = (limit, SCALE_UP_LIMIT) if high > limit else (high, TOO_MANY)
            if stabilized > ceiling:
                replicas, why = ceiling, reason
        elif stabilized < current:
            limit = min(self._down_limit(current, down, now), current)
            floor, reason = (limit, SCALE_DOWN_LIMIT) if low < limit else (low, TOO_FEW)
            if stabilized < floor:
                replicas, why = floor, reason
        return Limited(replicas, *able, replicas != stabilized, *why)

    def _changed_within(self, events: list[tuple[int, dt.datetime]], period: int, now: dt.datetime) -> int:
        cutoff = now - dt.timedelta(seconds=period)
        return sum(n for n, when in events if when > cutoff)

    def _period_start(self, current: int, period: int, now: dt.datetime) -> int:
        return current - self._changed_within(self.ups, period, now) + self._changed_within(self.downs, period, now)

    def _up_limit(self, current: int, up: Obj, now: dt.datetime) -> int:
        if up["selectPolicy"] == "Disabled":
            return current
        proposals = []
        for p in up["policies"]:
            start = self._period_start(current, p["periodSeconds"], now)
            proposals.append(start + p["value"] if p["type"] == "Pods"
                             else math.ceil(start * (1 + p["value"] / 100)))
        if not proposals:
            return current
        return min(proposals) if up["selectPolicy"] == "Min" else max(proposals)

    def _down_limit(self, current: int, down: Obj, now: dt.datetime) -> int:
        if down["selectPolicy"] == "Disabled":
            return current
        proposals = []
        for p in down["policies"]:
            start = self._period_start(current, p["periodSeconds"], now)
            proposals.append(start - p["value"] if p["type"] == "Pods" else int(start * (1 - p["value"] / 100)))
        if not proposals:
            return current
        return max(proposals) if down["selectPolicy"] == "Min" else min(proposals)

    def scaled(self, behavior: Obj | None, before: int, after: int, now: dt.datetime) -> None:
        """Remember a rescale this controller made (only policies read them, so only with behavior);
        events older than the direction's longest policy period are replaced, not kept."""
        if behavior is None or before == after:
            return
        direction, events = ("scaleUp", self.ups) if after > before else ("scaleDown", self.downs)
        longest = max([p["periodSeconds"] for p in rules(behavior, direction)["policies"]] or [0])
        cutoff = now - dt.timedelta(seconds=longest)
        event = (abs(after - before), now)
        for i, (_, when) in enumerate(events):
            if when <= cutoff:
                events[i] = event
                return
        events.append(event)
