"""Defaulting and validation of the storage, policy, scheduling and workload kinds added after the
first set (validation.py merges these tables into its own; same shapes, same wording rules).

Defaults are those kube-apiserver's scheme applies (SetDefaults_*), so objects read back look as
they do on a Kubernetes cluster; messages follow field.ErrorList's rendering.
"""

from __future__ import annotations

import json
import re
from typing import Callable

from . import quantity

Causes = list[tuple[str, str]]
USER_PRIORITY_MAX = 1000000000


def _spec(obj: dict) -> dict:
    spec = obj.setdefault("spec", {})
    return spec if isinstance(spec, dict) else {}


def _pod_template(spec: dict, key: str = "template") -> None:
    from .validation import default_pod_spec

    tmpl = spec.get(key)
    if isinstance(tmpl, dict) and isinstance(tmpl.setdefault("spec", {}), dict):
        default_pod_spec(tmpl["spec"])


# defaulting ----------------------------------------------------------------------------------
def _statefulset(obj: dict) -> None:
    spec = _spec(obj)
    _pod_template(spec)
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict) and isinstance(claim.get("spec"), dict):
            claim["spec"].setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {"phase": "Pending"})


def _cronjob(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job = (spec.get("jobTemplate") or {}).get("spec") if isinstance(spec.get("jobTemplate"), dict) else None
    if isinstance(job, dict):
        _pod_template(job)
        job.setdefault("backoffLimit", 6)
        job.setdefault("completionMode", "NonIndexed")
        job.setdefault("suspend", False)
        job.setdefault("podReplacementPolicy", "TerminatingOrFailed")


def _replication_controller(obj: dict) -> None:
    spec = _spec(obj)
    _pod_template(spec)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") if \
        isinstance(spec.get("template"), dict) else None
    if not spec.get("selector") and isinstance(labels, dict):
        spec["selector"] = dict(labels)
    meta = obj.setdefault("metadata", {})
    if isinstance(meta, dict) and not meta.get("labels") and isinstance(labels, dict):
        meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    spec.setdefault("minReadySeconds", 0)


def _persistent_volume(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")


def _limit_range(obj: dict) -> None:
    """As SetDefaults_LimitRangeItem: a container's default limit is the max, its default
    request the default limit (or the min)."""
    for item in _spec(obj).get("limits") or []:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        for res, value in (item.get("max") or {}).items():
            default.setdefault(res, value)
        request = item.setdefault("defaultRequest", {})
        for res, value in default.items():
            request.setdefault(res, value)
        for res, value in (item.get("min") or {}).items():
            request.setdefault(res, value)
        for key in ("default", "defaultRequest"):
            if not item[key]:
                del item[key]


def _network_policy(obj: dict) -> None:
    spec = _spec(obj)
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
        for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _hpa(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]


def _storage_class(obj: dict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _priority_class(obj: dict) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _pdb(obj: dict) -> None:
    spec = _spec(obj)
    if spec.get("minAvailable") is None and spec.get("maxUnavailable") is None:
        spec["minAvailable"] = 1


def _webhooks(obj: dict) -> None:
    mutating = obj.get("kind") == "MutatingWebhookConfiguration"
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        cfg = hook.get("clientConfig")
        if isinstance(cfg, dict) and isinstance(cfg.get("service"), dict):
            cfg["service"].setdefault("port", 443)


def _webhooks_causes(obj: dict) -> Causes:
    causes: Causes = []
    names = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        if not isinstance(hook, dict):
            continue
        p = f"webhooks[{i}]"
        name = hook.get("name") or ""
        if name in names:
            causes.append((f"{p}.name", f'Duplicate value: "{name}"'))
        names.add(name)
        if name and name.count(".") < 2:
            causes.append((f"{p}.name", f'Invalid value: "{name}": should be a domain with at least three segments '
                           "separated by dots"))
        if hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            causes.append((f"{p}.sideEffects", f'Unsupported value: "{hook.get("sideEffects") or ""}": supported '
                           'values: "None", "NoneOnDryRun"'))
        if "v1" not in (hook.get("admissionReviewVersions") or []):
            causes.append((f"{p}.admissionReviewVersions", "Invalid value: []string(nil): must include at least "
                           "one of v1"))
        if hook.get("failurePolicy") not in ("Fail", "Ignore"):
            causes.append((f"{p}.failurePolicy", f'Unsupported value: "{hook.get("failurePolicy")}": supported '
                           'values: "Fail", "Ignore"'))
        timeout = hook.get("timeoutSeconds")
        if isinstance(timeout, int) and not 1 <= timeout <= 30:
            causes.append((f"{p}.timeoutSeconds", f"Invalid value: {timeout}: the timeout value must be between "
                           "1 and 30 seconds"))
        cfg = hook.get("clientConfig") or {}
        if bool(cfg.get("url")) == bool(cfg.get("service")):
            causes.append((f"{p}.clientConfig", "Required value: exactly one of url or service is required"))
        elif cfg.get("url") and not str(cfg["url"]).startswith("https://"):
            causes.append((f"{p}.clientConfig.url", f'Invalid value: "{cfg["url"]}": \'https\' is the only '
                           "allowed URL scheme"))
    return causes


DEFAULTERS: dict[str, Callable[[dict], None]] = {
    "MutatingWebhookConfiguration": _webhooks, "ValidatingWebhookConfiguration": _webhooks,
    "StatefulSet": _statefulset, "CronJob": _cronjob, "ReplicationController": _replication_controller,
    "PersistentVolume": _persistent_volume,
    "PersistentVolumeClaim": lambda o: _spec(o).setdefault("volumeMode", "Filesystem"),
    "LimitRange": _limit_range, "NetworkPolicy": _network_policy, "HorizontalPodAutoscaler": _hpa,
    "StorageClass": _storage_class, "PriorityClass": _priority_class, "PodDisruptionBudget": _pdb,
    "PodTemplate": lambda o: _pod_template(o),
}


# validation ----------------------------------------------------------------------------------
def _non_negative(value: object, path: str) -> Causes:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [(path, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


def _priority_class_causes(obj: dict) -> Causes:
    name, value = (obj.get("metadata") or {}).get("name", ""), obj.get("value")
    causes: Causes = []
    from .admission.priority import SYSTEM_CLASSES
    if name.startswith("system-") and name not in SYSTEM_CLASSES:
        causes.append(("metadata.name", f'Invalid value: "{name}": priority class names with \'system-\' '
                       "prefix are reserved"))
    if isinstance(value, int) and name not in SYSTEM_CLASSES and value > USER_PRIORITY_MAX:
        causes.append(("value", f"Invalid value: {value}: maximum allowed value of a user defined priority "
                       f"is {USER_PRIORITY_MAX}"))
    if name in SYSTEM_CLASSES and value != SYSTEM_CLASSES[name]:
        causes.append(("value", f"Invalid value: {value}: value of {name} must be {SYSTEM_CLASSES[name]}"))
    policy = obj.get("preemptionPolicy")
    if policy not in (None, "PreemptLowerPriority", "Never"):
        causes.append(("preemptionPolicy", f'Unsupported value: "{policy}": supported values: "Never", '
                       '"PreemptLowerPriority"'))
    return causes


CRON_FIELD = re.compile(r"^[\d*/,\-?A-Za-z]+$")


def _cronjob_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    schedule = spec.get("schedule")
    causes: Causes = []
    if isinstance(schedule, str) and schedule:
        fields = schedule.split()
        if not schedule.startswith("@") and (len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields)):
            causes.append(("spec.schedule", f'Invalid value: "{schedule}": expected exactly 5 fields, found '
                           f"{len(fields)}: {schedule}" if len(fields) != 5 else
                           f'Invalid value: "{schedule}": unparseable schedule'))
        if "TZ=" in schedule or "CRON_TZ=" in schedule:
            causes.append(("spec.schedule", f'Invalid value: "{schedule}": cannot use TZ or CRON_TZ in schedule, '
                           "use timeZone field instead"))
    policy = spec.get("concurrencyPolicy")
    if policy not in (None, "Allow", "Forbid", "Replace"):
        causes.append(("spec.concurrencyPolicy", f'Unsupported value: "{policy}": supported values: "Allow", '
                       '"Forbid", "Replace"'))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit", "startingDeadlineSeconds"):
        causes += _non_negative(spec.get(key), f"spec.{key}")
    return causes


def _pdb_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        return [("spec", f"Invalid value: {json.dumps(spec, separators=(',', ':'))}: minAvailable and "
                 "maxUnavailable cannot be both set")]
    causes: Causes = []
    for key in ("minAvailable", "maxUnavailable"):
        value = spec.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            causes += _non_negative(value, f"spec.{key}")
        elif isinstance(value, str) and not re.fullmatch(r"\d+%", value):
            causes.append((f"spec.{key}", f'Invalid value: "{value}": a valid percent string must be a numeric '
                           "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                           "'[0-9]+%')"))
    return causes


def _hpa_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    low, high = spec.get("minReplicas"), spec.get("maxReplicas")
    causes: Causes = []
    if isinstance(low, int) and low < 1:
        causes.append(("spec.minReplicas", f"Invalid value: {low}: must be greater than or equal to 1"))
    if isinstance(high, int) and isinstance(low, int) and high < low:
        causes.append(("spec.maxReplicas", f"Invalid value: {high}: must be greater than or equal to "
                       "`minReplicas`"))
    return causes


def _quantities(mapping: object, path: str) -> Causes:
    causes: Causes = []
    for key, value in (mapping or {}).items() if isinstance(mapping, dict) else []:
        if quantity.parse(value) is None:
            causes.append((f"{path}[{key}]", f'Invalid value: "{value}": quantities must match the regular '
                           "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    return causes


def _quota_causes(obj: dict) -> Causes:
    return _quantities((obj.get("spec") or {}).get("hard"), "spec.hard")


def _limit_range_causes(obj: dict) -> Causes:
    causes: Causes = []
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind not in ("Container", "Pod", "PersistentVolumeClaim"):
            causes.append((f"spec.limits[{i}].type", f'Unsupported value: "{kind}": supported values: '
                           '"Container", "PersistentVolumeClaim", "Pod"'))
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            causes += _quantities(item.get(key), f"spec.limits[{i}].{key}")
        for res, low in (item.get("min") or {}).items():
            high = (item.get("max") or {}).get(res)
            if high is not None and quantity.parse(low) is not None and quantity.parse(high) is not None \
                    and quantity.parse(low) > quantity.parse(high):
                causes.append((f"spec.limits[{i}].min[{res}]", f'Invalid value: "{low}": min value {low} is '
                               f"greater than max value {high}"))
    return causes


def _pvc_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    if not spec.get("accessModes"):
        causes.append(("spec.accessModes", "Required value: at least 1 access mode is required"))
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        causes.append(("spec.resources[storage]", "Required value"))
    return causes + _quantities((spec.get("resources") or {}).get("requests"), "spec.resources.requests")


def _pv_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    if not spec.get("accessModes"):
        causes.append(("spec.accessModes", "Required value"))
    if not (spec.get("capacity") or {}).get("storage"):
        causes.append(("spec.capacity", "Required value"))
    sources = [k for k in spec if k in ("hostPath", "local", "nfs", "csi", "iscsi", "fc", "cephfs", "rbd")]
    if len(sources) != 1:
        causes.append(("spec", "Required value: must specify a volume type") if not sources else
                      ("spec", "Forbidden: may not specify more than 1 volume type"))
    return causes


def _ingress_causes(obj: dict) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    if not spec.get("rules") and not spec.get("defaultBackend"):
        causes.append(("spec", "Invalid value: \"\": either `defaultBackend` or `rules` must be specified"))
    for i, rule in enumerate(spec.get("rules") or []):
        if not isinstance(rule, dict):
            continue
        paths = (rule.get("http") or {}).get("paths") if isinstance(rule.get("http"), dict) else None
        for j, path in enumerate(paths or []):
            if not isinstance(path, dict):
                continue
            where = f"spec.rules[{i}].http.paths[{j}]"
            kind = path.get("pathType")
            if kind is None:
                causes.append((f"{where}.pathType", "Required value: pathType must be specified"))
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                causes.append((f"{where}.pathType", f'Unsupported value: "{kind}": supported values: "Exact", '
                               '"ImplementationSpecific", "Prefix"'))
            if kind in ("Exact", "Prefix") and not str(path.get("path") or "").startswith("/"):
                causes.append((f"{where}.path", f'Invalid value: "{path.get("path") or ""}": must be an absolute '
                               "path"))
            backend = path.get("backend") if isinstance(path.get("backend"), dict) else {}
            if bool(backend.get("service")) == bool(backend.get("resource")):
                causes.append((f"{where}.backend", "Invalid value: \"\": cannot set both resource and service "
                               "backends" if backend.get("service") else "Required value: resource or service "
                               "backend must be specified"))
    return causes


def _network_policy_causes(obj: dict) -> Causes:
    causes: Causes = []
    for i, t in enumerate((obj.get("spec") or {}).get("policyTypes") or []):
        if t not in ("Ingress", "Egress"):
            causes.append((f"spec.policyTypes[{i}]", f'Unsupported value: "{t}": supported values: "Egress", '
                           '"Ingress"'))
    return causes


VALIDATORS: dict[str, Callable[[dict], Causes]] = {
    "Ingress": _ingress_causes, "NetworkPolicy": _network_policy_causes,
    "IngressClass": lambda o: [] if (o.get("spec") or {}).get("controller") else [("spec.controller",
                                                                                  "Required value")],
    "MutatingWebhookConfiguration": _webhooks_causes, "ValidatingWebhookConfiguration": _webhooks_causes,
    "PriorityClass": _priority_class_causes, "CronJob": _cronjob_causes, "PodDisruptionBudget": _pdb_causes,
    "HorizontalPodAutoscaler": _hpa_causes, "ResourceQuota": _quota_causes, "LimitRange": _limit_range_causes,
    "PersistentVolumeClaim": _pvc_causes, "PersistentVolume": _pv_causes,
}
