"""The horizontal pod autoscaler controller (autoscaling/v2), as kube-controller-manager's.

Every 15 s (--horizontal-pod-autoscaler-sync-period) and on any change to an HPA: read the target's
scale subresource (Deployment, ReplicaSet, StatefulSet, ReplicationController), the pods its
selector picks (from the shared pod informer) and their PodMetrics from metrics.k8s.io/v1beta1
through the API server; turn each Resource metric into a replica count (hpacalc.py), take the
highest, stabilize and limit it (min/max, the 300 s scale-down window, spec.behavior policies),
write the scale when it changes (event SuccessfulRescale) and the status: currentReplicas,
desiredReplicas, currentMetrics, lastScaleTime and the AbleToScale, ScalingActive and
ScalingLimited conditions with kube's reasons and messages. Failures read as upstream's:
FailedGetScale, FailedGetResourceMetric (e.g. no metrics API: ScalingActive=False),
FailedComputeMetricsReplicas, FailedRescale.

Only Resource metrics are computed (ContainerResource too); Pods, Object and External metrics need
a custom/external metrics API this cluster does not have, and are reported as invalid metrics.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from provisioner.components.api.client import ApiStatusError
from provisioner.components.api.quantity import milli
from provisioner.components.apiserver.errors import ApiError
from provisioner.components.apiserver.selectors import match_labels, parse_labels

from . import hpacalc, podutil
from .base import Controller

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SYNC_PERIOD = 15.0
METRICS = ("metrics.k8s.io", "v1beta1", "pods")
SCALABLE = {  # (group, kind) -> (version, plural) of the scale subresource's owner
    ("apps", "Deployment"): ("v1", "deployments"),
    ("apps", "ReplicaSet"): ("v1", "replicasets"),
    ("apps", "StatefulSet"): ("v1", "statefulsets"),
    ("", "ReplicationController"): ("v1", "replicationcontrollers"),
}


class ScaleError(Exception):
    pass


class MetricFailure(Exception):
    """One metric spec that gave no replica count: `reason` names the event and condition,
    `detail` is the cause; str() is upstream's wrapped error ("failed to get cpu resource metric
    value: ...")."""

    def __init__(self, reason: str, wrapped: str, detail: str) -> None:
        super().__init__(f"{wrapped}: {detail}")
        self.reason, self.detail = reason, detail


# metric source type -> (failure reason, wrapping text); Pods/Object/External need APIs not served here
UNSERVED = {
    "Pods": ("FailedGetPodsMetric", "failed to get pods metric value",
             "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"),
    "Object": ("FailedGetObjectMetric", "failed to get object metric value",
               "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) "
               "registered"),
    "External": ("FailedGetExternalMetric", "failed to get external metric value",
                 "unable to fetch metrics from external metrics API: no external metrics API "
                 "(external.metrics.k8s.io) registered"),
}


def format_milli(value: int) -> str:
    """A thousandths count as a canonical DecimalSI quantity ("250m", "1", "2M")."""
    if value % 1000:
        return f"{value}m"
    whole = value // 1000
    for suffix in ("E", "P", "T", "G", "M", "k"):
        unit = 10 ** (3 * ("kMGTPE".index(suffix) + 1))
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)


def parse_duration(text: str | None) -> dt.timedelta:
    """metav1.Duration as metrics-server writes it ("30s", "10.5s", "1m0s")."""
    if not text:
        return dt.timedelta(0)
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        total += float(number or 0) * units.get(unit, 0)
        number, i = "", i + len(unit)
    return dt.timedelta(seconds=total)


def pod_metrics(items: list[Obj], resource: str, container: str = "") -> dict[str, hpacalc.PodMetric]:
    """PodMetrics items -> pod name -> summed usage in thousandths; a pod with a container lacking
    the resource (or with no containers) counts as missing, as upstream's metrics client does."""
    out = {}
    for item in items:
        containers = [c for c in item.get("containers") or [] if not container or c.get("name") == container]
        usage = [(c.get("usage") or {}).get(resource) for c in containers]
        if not usage or any(u is None for u in usage):
            continue
        out[item["metadata"]["name"]] = hpacalc.PodMetric(
            sum(milli(u) for u in usage), podutil.parse_time(item.get("timestamp")),
            parse_duration(item.get("window")))
    return out


def set_condition(status: Obj, ctype: str, state: str, reason: str, message: str, now: str) -> None:
    """Set one HPA condition; its lastTransitionTime moves only when its status does."""
    conds = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != state:
                c["lastTransitionTime"] = now
            c.update(status=state, reason=reason, message=message)
            return
    conds.append({"type": ctype, "status": state, "lastTransitionTime": now, "reason": reason,
                  "message": message})


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"
    requires = (("autoscaling", "v2", "horizontalpodautoscalers"),)

    def setup(self) -> None:
        self.hpas = self.ctx.informer("autoscaling", "v2", "horizontalpodautoscalers")
        self.pods = self.ctx.informer("", "v1", "pods")
        self.memory: dict[str, hpacalc.Recommendations] = {}
        self.hpas.add_handler(self.enqueue, lambda _o, n: self.enqueue(n), self._deleted)

    def _deleted(self, hpa: Obj) -> None:
        self.memory.pop(f"{hpa['metadata'].get('namespace')}/{hpa['metadata']['name']}", None)

    async def sync(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.memory.pop(key, None)
            return
        try:
            await self.reconcile(copy.deepcopy(hpa), key)
        finally:
            self.queue.add_after(key, SYNC_PERIOD)  # the resync: metrics change without any watch event

    # -- I/O at the edges -------------------------------------------------------------------------
    def _event(self, hpa: Obj, etype: str, reason: str, message: str) -> None:
        self.ctx.event(hpa, etype, reason, message)

    async def get_scale(self, hpa: Obj) -> tuple[Obj, tuple[str, str, str]]:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        group, _, _version = (ref.get("apiVersion") or "").rpartition("/")
        target = SCALABLE.get((group, ref.get("kind", "")))
        if target is None:
            raise ScaleError(f'no matches for kind "{ref.get("kind", "")}" in group "{group}"')
        gvr = (group, target[0], target[1])
        try:
            return await self.api.get(*gvr, ref.get("name", ""), hpa["metadata"]["namespace"], sub="scale"), gvr
        except ApiStatusError as exc:
            raise ScaleError(str(exc)) from None

    async def fetch_metrics(self, namespace: str, selector: str) -> list[Obj]:
        try:
            result = await self.api.list(*METRICS, namespace, labelSelector=selector)
        except ApiStatusError as exc:
            detail = ("the server could not find the requested resource (get pods.metrics.k8s.io)"
                      if exc.code == 404 else str(exc))
            raise hpacalc.MetricError(f"unable to fetch metrics from resource metrics API: {detail}") from None
        except OSError as exc:
            raise hpacalc.MetricError(f"unable to fetch metrics from resource metrics API: {exc}") from None
        items = result.get("items") or []
        if not items:
            raise hpacalc.MetricError("no metrics returned from resource metrics API")
        return items

    # -- one pass ----------------------------------------------------------------------------------
    async def reconcile(self, hpa: Obj, key: str) -> None:
        now = podutil.utcnow()
        stamp = podutil.rfc3339(now)
        original = copy.deepcopy(hpa.get("status") or {})
        status = hpa["status"] = copy.deepcopy(original)
        spec = hpa["spec"]
        try:
            scale, gvr = await self.get_scale(hpa)
        except ScaleError as exc:
            self._event(hpa, "Warning", "FailedGetScale", str(exc))
            set_condition(status, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {exc}", stamp)
            await self.write_status(hpa, original)
            return
        set_condition(status, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", stamp)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        memory = self.memory.setdefault(key, hpacalc.Recommendations())
        memory.first_seen(current, now)
        low = spec.get("minReplicas", 1) if spec.get("minReplicas") is not None else 1
        high = int(spec.get("maxReplicas") or 0)
        statuses: list[Obj] = []
        reason, rescale, desired = "", True, 0
        if current == 0 and low != 0:
            rescale = False
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", stamp)
        elif current > high:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", high
        elif current < low:
            reason, desired = "Current number of replicas below Spec.MinReplicas", low
        else:
            proposal, metric, statuses = await self.replicas_for_metrics(hpa, scale, status, stamp, now)
            if proposal is None:
                self._set_current(status, current, statuses)
                await self.write_status(hpa, original)
                return
            desired = max(desired, proposal)
            if desired > current:
                reason = f"{metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            if spec.get("behavior") is None:
                limited = memory.normalize(current, desired, low, high, now)
            else:
                limited = memory.normalize_with_behavior(spec["behavior"], current, desired, low, high, now)
            set_condition(status, "AbleToScale", "True", limited.able_reason, limited.able_message, stamp)
            set_condition(status, "ScalingLimited", "True" if limited.limited else "False",
                          limited.limit_reason, limited.limit_message, stamp)
            desired = limited.replicas
            rescale = desired != current
        if rescale:
            try:
                await self.api.replace(*gvr, dict(scale, spec=dict(scale.get("spec") or {}, replicas=desired)),
                                       hpa["metadata"]["namespace"], sub="scale")
            except ApiStatusError as exc:
                self._event(hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {exc}")
                set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {exc}", stamp)
                self._set_current(status, current, statuses)
                await self.write_status(hpa, original)
                raise
            set_condition(status, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", stamp)
            self._event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            memory.scaled(spec.get("behavior"), current, desired, now)
            log.info("%s: rescaled %s %s from %d to %d (%s)", key, gvr[2], scale["metadata"]["name"],
                     current, desired, reason)
            status["lastScaleTime"] = stamp
        else:
            desired = current
        self._set_current(status, current, statuses)
        status["desiredReplicas"] = desired
        await self.write_status(hpa, original)

    async def replicas_for_metrics(self, hpa: Obj, scale: Obj, status: Obj, stamp: str,
                                   now: dt.datetime) -> tuple[int | None, str, list[Obj]]:
        """(highest proposal, or None when nothing may be done; the metric behind it; currentMetrics),
        as upstream's computeReplicasForMetrics: one bad metric does not stop the others, unless it
        would let the HPA scale down on partial evidence."""
        text = (scale.get("status") or {}).get("selector") or ""
        if not text:
            self._event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", stamp)
            self._event(hpa, "Warning", "FailedComputeMetricsReplicas", "selector is required")
            return None, "", []
        try:
            selector = parse_labels(text)
        except ApiError as exc:
            message = f"couldn't convert selector into a corresponding internal selector object: {exc}"
            self._event(hpa, "Warning", "InvalidSelector", message)
            set_condition(status, "ScalingActive", "False", "InvalidSelector", message, stamp)
            self._event(hpa, "Warning", "FailedComputeMetricsReplicas", message)
            return None, "", []
        ns = hpa["metadata"]["namespace"]
        pods = [p for p in self.pods.by_index("namespace", ns)
                if match_labels(selector, (p.get("metadata") or {}).get("labels"))]
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        specs = hpa["spec"].get("metrics") or []
        statuses: list[Obj] = [{"type": ""} for _ in specs]
        best, best_metric = 0, ""
        invalid: list[MetricFailure] = []  # the first one is what the condition reports
        for i, metric in enumerate(specs):
            try:
                proposal, name, statuses[i] = await self.replicas_for_metric(metric, spec_replicas, ns, text,
                                                                             pods, now)
            except MetricFailure as exc:
                self._event(hpa, "Warning", exc.reason, exc.detail)
                invalid.append(exc)
                continue
            if best == 0 or proposal > best:
                best, best_metric = proposal, name
        if invalid and (len(invalid) >= len(specs) or best < spec_replicas):
            first = invalid[0]
            set_condition(status, "ScalingActive", "False", first.reason,
                          f"the HPA was unable to compute the replica count: {first.detail}", stamp)
            self._event(hpa, "Warning", "FailedComputeMetricsReplicas",
                        f"invalid metrics ({len(invalid)} invalid out of {len(specs)}), first error is: {first}")
            return None, "", statuses
        set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {best_metric}", stamp)
        return best, best_metric, statuses

    async def replicas_for_metric(self, metric: Obj, current: int, ns: str, selector: str, pods: list[Obj],
                                  now: dt.datetime) -> tuple[int, str, Obj]:
        """(proposal, metric name for messages, its MetricStatus) for one metric spec, or MetricFailure."""
        mtype = metric.get("type", "")
        if mtype in UNSERVED:
            reason, wrapped, detail = UNSERVED[mtype]
            raise MetricFailure(reason, wrapped, detail)
        if mtype not in ("Resource", "ContainerResource"):
            raise MetricFailure("InvalidMetricSourceType", "invalid metric", f'unknown metric source type "{mtype}"')
        source = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
        resource, container = source.get("name", ""), source.get("container", "")
        target = source.get("target") or {}
        reason = "FailedGetResourceMetric" if mtype == "Resource" else "FailedGetContainerResourceMetric"
        wrapped = f"failed to get {resource} {'resource' if mtype == 'Resource' else 'container'} metric value"
        try:
            if target.get("averageValue") is not None:
                what = "usage"
                items = await self._metrics_or_fail(ns, selector, resource)
                proposal, usage = hpacalc.plain_replicas(current, milli(target["averageValue"]), resource, pods,
                                                         pod_metrics(items, resource, container), now)
                name, current_value = f"{resource} resource", {"averageValue": format_milli(usage)}
            elif target.get("averageUtilization") is not None:
                what = "utilization"
                items = await self._metrics_or_fail(ns, selector, resource)
                proposal, percent, raw = hpacalc.resource_replicas(
                    current, int(target["averageUtilization"]), resource, pods,
                    pod_metrics(items, resource, container), now, container)
                name = f"{resource} {'' if mtype == 'Resource' else 'container '}resource utilization " \
                       "(percentage of request)"
                current_value = {"averageUtilization": percent, "averageValue": format_milli(raw)}
            else:
                raise MetricFailure(reason, wrapped, "invalid resource metric source: neither an average "
                                    "utilization target nor an average value (usage) target was set")
        except hpacalc.MetricError as exc:
            raise MetricFailure(reason, wrapped, f"failed to get {resource} {what}: {exc}") from None
        key = "resource" if mtype == "Resource" else "containerResource"
        body = {"name": resource, "current": current_value}
        if container:
            body["container"] = container
        return proposal, name, {"type": mtype, key: body}

    async def _metrics_or_fail(self, ns: str, selector: str, resource: str) -> list[Obj]:
        try:
            return await self.fetch_metrics(ns, selector)
        except hpacalc.MetricError as exc:
            raise hpacalc.MetricError(f"unable to get metrics for resource {resource}: {exc}") from None

    @staticmethod
    def _set_current(status: Obj, current: int, statuses: list[Obj]) -> None:
        status["currentReplicas"] = current
        if statuses:
            status["currentMetrics"] = statuses
        else:
            status.pop("currentMetrics", None)
        status.setdefault("desiredReplicas", current)

    async def write_status(self, hpa: Obj, original: Obj) -> None:
        if hpa["status"] == original:
            return
        try:
            await self.api.update_status("autoscaling", "v2", "horizontalpodautoscalers", hpa,
                                         hpa["metadata"]["namespace"])
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

