"""Server-side printing (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`) with kubectl's columns.

Each kind has a list of (name, type, priority, cell function); priority 1 columns are shown
by `-o wide` only. Kinds without an entry get Name + Age, as kube-apiserver's default printer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from .selectors import format_label_selector

Col = tuple[str, str, int, Callable[[dict], Any]]


def human_duration(seconds: float) -> str:
    """Port of apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        days = (h // 24) % 365
        return f"{h // (24 * 365)}y{days}d" if days else f"{h // (24 * 365)}y"
    return f"{h // (24 * 365)}y"


def _ts(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _job_duration(j: dict) -> str:
    start = _ts(_g(j, "status.startTime"))
    if start is None:
        return ""
    end = _ts(_g(j, "status.completionTime")) or dt.datetime.now(dt.timezone.utc)
    return human_duration((end - start).total_seconds())


def _subjects(kind: str) -> Callable[[dict], str]:
    def cell(b: dict) -> str:
        subjects = [s for s in b.get("subjects") or [] if isinstance(s, dict) and s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects)
        return ", ".join(str(s.get("name", "")) for s in subjects)
    return cell


def _csr_condition(c: dict) -> str:
    types = [str(x.get("type")) for x in _g(c, "status.conditions", []) if isinstance(x, dict)]
    if _g(c, "status.certificate"):
        types.append("Issued")
    return ",".join(types) or "Pending"


def _event_source(e: dict) -> str:
    component = _g(e, "source.component") or e.get("reportingComponent") or ""
    host = _g(e, "source.host") or e.get("reportingInstance") or ""
    return f"{component}, {host}" if component and host else component or host


def age(obj: dict) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return human_duration((dt.datetime.now(dt.timezone.utc) - t).total_seconds())


def _g(obj: dict, path: str, default: Any = None) -> Any:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return default if cur is None else cur


def _pod_ready(p: dict) -> str:
    cs = _g(p, "status.containerStatuses", [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{len(_g(p, 'spec.containers', []))}"


def _pod_status(p: dict) -> str:
    if _g(p, "metadata.deletionTimestamp"):
        return "Terminating"
    for c in _g(p, "status.containerStatuses", []):
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return waiting["reason"]
        term = (c.get("state") or {}).get("terminated")
        if term and term.get("reason") and _g(p, "status.phase") not in ("Succeeded",):
            return term["reason"]
    return _g(p, "status.reason") or _g(p, "status.phase", "Pending")


def _restarts(p: dict) -> int:
    return sum(c.get("restartCount", 0) for c in _g(p, "status.containerStatuses", []))


def _ports(svc: dict) -> str:
    out = []
    for p in _g(svc, "spec.ports", []):
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _containers(o: dict, field: str) -> str:
    return ",".join(str(c.get(field, "")) for c in _g(o, "spec.template.spec.containers", []))


def _node_status(n: dict) -> str:
    ready = next((c for c in _g(n, "status.conditions", []) if c.get("type") == "Ready"), None)
    s = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"
    if _g(n, "spec.unschedulable"):
        s += ",SchedulingDisabled"
    return s


def _node_roles(n: dict) -> str:
    roles = sorted(k.split("/", 1)[1] for k in _g(n, "metadata.labels", {})
                   if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def _addr(n: dict, kind: str) -> str:
    return next((a["address"] for a in _g(n, "status.addresses", []) if a.get("type") == kind), "<none>")


def _job_status(j: dict) -> str:
    for c in _g(j, "status.conditions", []):
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return c["type"]
    return "Running"


NAME: Col = ("Name", "string", 0, lambda o: _g(o, "metadata.name"))
AGE: Col = ("Age", "string", 0, age)

COLUMNS: dict[str, list[Col]] = {
    "Namespace": [NAME, ("Status", "string", 0, lambda o: _g(o, "status.phase", "")), AGE],
    "Node": [NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _node_roles), AGE,
             ("Version", "string", 0, lambda o: _g(o, "status.nodeInfo.kubeletVersion", "")),
             ("Internal-IP", "string", 1, lambda o: _addr(o, "InternalIP")),
             ("External-IP", "string", 1, lambda o: _addr(o, "ExternalIP")),
             ("OS-Image", "string", 1, lambda o: _g(o, "status.nodeInfo.osImage", "<unknown>")),
             ("Kernel-Version", "string", 1, lambda o: _g(o, "status.nodeInfo.kernelVersion", "<unknown>")),
             ("Container-Runtime", "string", 1, lambda o: _g(o, "status.nodeInfo.containerRuntimeVersion", "<unknown>"))],
    "Pod": [NAME, ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
            ("Restarts", "string", 0, lambda o: str(_restarts(o))), AGE,
            ("IP", "string", 1, lambda o: _g(o, "status.podIP", "<none>")),
            ("Node", "string", 1, lambda o: _g(o, "spec.nodeName", "<none>")),
            ("Nominated Node", "string", 1, lambda o: _g(o, "status.nominatedNodeName", "<none>")),
            ("Readiness Gates", "string", 1, lambda o: "<none>")],
    "Service": [NAME, ("Type", "string", 0, lambda o: _g(o, "spec.type", "")),
                ("Cluster-IP", "string", 0, lambda o: _g(o, "spec.clusterIP", "<none>")),
                ("External-IP", "string", 0, lambda o: ",".join(_g(o, "spec.externalIPs", [])) or
                 ("<pending>" if _g(o, "spec.type") == "LoadBalancer" else "<none>")),
                ("Port(s)", "string", 0, _ports), AGE,
                ("Selector", "string", 1, lambda o: ",".join(
                    f"{k}={v}" for k, v in sorted(_g(o, "spec.selector", {}).items())) or "<none>")],
    "Endpoints": [NAME, ("Endpoints", "string", 0, lambda o: ",".join(
        f"{a.get('ip')}:{p.get('port')}" for s in o.get("subsets") or [] for a in s.get("addresses") or []
        for p in s.get("ports") or []) or "<none>"), AGE],
    "ConfigMap": [NAME, ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})), AGE],
    "Secret": [NAME, ("Type", "string", 0, lambda o: o.get("type", "")),
               ("Data", "integer", 0, lambda o: len(o.get("data") or {})), AGE],
    "ServiceAccount": [NAME, ("Secrets", "string", 0, lambda o: len(o.get("secrets") or [])), AGE],
    "Event": [("Last Seen", "string", 0, lambda o: age({"metadata": {"creationTimestamp":
                                                                     o.get("lastTimestamp") or _g(o, "metadata.creationTimestamp")}})),
              ("Type", "string", 0, lambda o: o.get("type", "")),
              ("Reason", "string", 0, lambda o: o.get("reason", "")),
              ("Object", "string", 0, lambda o: f"{_g(o, 'involvedObject.kind', '').lower()}/{_g(o, 'involvedObject.name', '')}"),
              ("Message", "string", 0, lambda o: o.get("message", "")),
              ("Subobject", "string", 1, lambda o: _g(o, "involvedObject.fieldPath", "")),
              ("Source", "string", 1, _event_source),
              ("First Seen", "string", 1, lambda o: age({"metadata": {"creationTimestamp":
                                                                      o.get("firstTimestamp") or _g(o, "metadata.creationTimestamp")}})),
              ("Count", "string", 1, lambda o: str(o.get("count") or 1)),
              ("Name", "string", 1, lambda o: _g(o, "metadata.name"))],
    "Deployment": [NAME, ("Ready", "string", 0, lambda o: f"{_g(o, 'status.readyReplicas', 0)}/{_g(o, 'spec.replicas', 0)}"),
                   ("Up-to-date", "integer", 0, lambda o: _g(o, "status.updatedReplicas", 0)),
                   ("Available", "integer", 0, lambda o: _g(o, "status.availableReplicas", 0)), AGE,
                   ("Containers", "string", 1, lambda o: _containers(o, "name")),
                   ("Images", "string", 1, lambda o: _containers(o, "image")),
                   ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.selector")))],
    "ReplicaSet": [NAME, ("Desired", "integer", 0, lambda o: _g(o, "spec.replicas", 0)),
                   ("Current", "integer", 0, lambda o: _g(o, "status.replicas", 0)),
                   ("Ready", "integer", 0, lambda o: _g(o, "status.readyReplicas", 0)), AGE,
                   ("Containers", "string", 1, lambda o: _containers(o, "name")),
                   ("Images", "string", 1, lambda o: _containers(o, "image")),
                   ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.selector")))],
    "DaemonSet": [NAME, ("Desired", "integer", 0, lambda o: _g(o, "status.desiredNumberScheduled", 0)),
                  ("Current", "integer", 0, lambda o: _g(o, "status.currentNumberScheduled", 0)),
                  ("Ready", "integer", 0, lambda o: _g(o, "status.numberReady", 0)),
                  ("Up-to-date", "integer", 0, lambda o: _g(o, "status.updatedNumberScheduled", 0)),
                  ("Available", "integer", 0, lambda o: _g(o, "status.numberAvailable", 0)),
                  ("Node Selector", "string", 0, lambda o: ",".join(
                      f"{k}={v}" for k, v in _g(o, "spec.template.spec.nodeSelector", {}).items()) or "<none>"), AGE,
                  ("Containers", "string", 1, lambda o: _containers(o, "name")),
                  ("Images", "string", 1, lambda o: _containers(o, "image")),
                  ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.selector")))],
    "Job": [NAME, ("Status", "string", 0, _job_status),
            ("Completions", "string", 0, lambda o: f"{_g(o, 'status.succeeded', 0)}/{_g(o, 'spec.completions', 1)}"),
            ("Duration", "string", 0, _job_duration), AGE,
            ("Containers", "string", 1, lambda o: _containers(o, "name")),
            ("Images", "string", 1, lambda o: _containers(o, "image")),
            ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.selector")))],
    "Lease": [NAME, ("Holder", "string", 0, lambda o: _g(o, "spec.holderIdentity", "")), AGE],
    "EndpointSlice": [NAME, ("AddressType", "string", 0, lambda o: o.get("addressType", "")),
                      ("Ports", "string", 0, lambda o: ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>"),
                      ("Endpoints", "string", 0, lambda o: ",".join(
                          a for e in o.get("endpoints") or [] for a in e.get("addresses") or []) or "<unset>"), AGE],
    "Role": [NAME, ("Created At", "string", 0, lambda o: _g(o, "metadata.creationTimestamp"))],
    "ClusterRole": [NAME, ("Created At", "string", 0, lambda o: _g(o, "metadata.creationTimestamp"))],
    "RoleBinding": [NAME, ("Role", "string", 0, lambda o: f"{_g(o, 'roleRef.kind')}/{_g(o, 'roleRef.name')}"), AGE,
                    ("Users", "string", 1, _subjects("User")), ("Groups", "string", 1, _subjects("Group")),
                    ("ServiceAccounts", "string", 1, _subjects("ServiceAccount"))],
    "ClusterRoleBinding": [NAME, ("Role", "string", 0, lambda o: f"{_g(o, 'roleRef.kind')}/{_g(o, 'roleRef.name')}"), AGE,
                           ("Users", "string", 1, _subjects("User")), ("Groups", "string", 1, _subjects("Group")),
                           ("ServiceAccounts", "string", 1, _subjects("ServiceAccount"))],
    "CertificateSigningRequest": [NAME, AGE, ("SignerName", "string", 0, lambda o: _g(o, "spec.signerName", "")),
                                  ("Requestor", "string", 0, lambda o: _g(o, "spec.username", "")),
                                  ("RequestedDuration", "string", 0, lambda o: human_duration(
                                      _g(o, "spec.expirationSeconds")) if _g(o, "spec.expirationSeconds") else "<none>"),
                                  ("Condition", "string", 0, _csr_condition)],
}

MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(o: dict, path: str) -> str:
    return ",".join(MODES.get(m, m) for m in _g(o, path, []))


def _quota(o: dict, limits: bool) -> str:
    hard, used = _g(o, "status.hard", {}) or _g(o, "spec.hard", {}), _g(o, "status.used", {})
    keys = sorted(k for k in hard if k.startswith("limits.") == limits)
    return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)


def _hpa_targets(o: dict) -> str:
    out = []
    for i, m in enumerate(_g(o, "spec.metrics", [])):
        target = (m.get("resource") or {}).get("target") or {}
        current = next((c for j, c in enumerate(_g(o, "status.currentMetrics", [])) if j == i), {})
        values = (current.get("resource") or {}).get("current") or {}
        now = values.get("averageUtilization")
        if target.get("averageUtilization") is not None:
            out.append(f"{m.get('resource', {}).get('name', '')}: "
                       f"{'<unknown>' if now is None else f'{now}%'}/{target['averageUtilization']}%")
        elif target.get("averageValue") is not None:  # kubectl's "cpu: 250m/500m"
            out.append(f"{m.get('resource', {}).get('name', '')}: "
                       f"{values.get('averageValue') or '<unknown>'}/{target['averageValue']}")
        else:
            out.append("<unknown>/" + str(target.get("value") or ""))
    return ", ".join(out) or "<none>"


def _ingress_hosts(o: dict) -> str:
    hosts = [r.get("host") for r in _g(o, "spec.rules", []) if r.get("host")]
    return ",".join(hosts) or "*"


def _lb(o: dict) -> str:
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in _g(o, "status.loadBalancer.ingress", []))


def _default_mark(o: dict) -> str:
    notes = _g(o, "metadata.annotations", {})
    default = "true" in (notes.get("storageclass.kubernetes.io/is-default-class"),
                         notes.get("storageclass.beta.kubernetes.io/is-default-class"))
    return _g(o, "metadata.name") + (" (default)" if default else "")


def _available(o: dict) -> str:
    cond = next((c for c in _g(o, "status.conditions", []) if c.get("type") == "Available"), None)
    if not cond:
        return "Unknown"
    return cond.get("status") if cond.get("status") == "True" else f"{cond.get('status')} ({cond.get('reason')})"


def _claim(o: dict) -> str:
    ref = _g(o, "spec.claimRef")
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""


def _int_or_na(path: str) -> Callable[[dict], str]:
    return lambda o: "N/A" if _g(o, path) is None else str(_g(o, path))


# custom resources' columns from their CRDs' additionalPrinterColumns, kept by crd.py
CUSTOM_COLUMNS: dict[str, list[Col]] = {}
CONTAINERS: Col = ("Containers", "string", 1, lambda o: _containers(o, "name"))
IMAGES: Col = ("Images", "string", 1, lambda o: _containers(o, "image"))
SELECTOR: Col = ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.selector")))
COLUMNS.update({
    "ReplicationController": [NAME, ("Desired", "integer", 0, lambda o: _g(o, "spec.replicas", 0)),
                              ("Current", "integer", 0, lambda o: _g(o, "status.replicas", 0)),
                              ("Ready", "integer", 0, lambda o: _g(o, "status.readyReplicas", 0)), AGE,
                              CONTAINERS, IMAGES,
                              ("Selector", "string", 1, lambda o: ",".join(
                                  f"{k}={v}" for k, v in sorted(_g(o, "spec.selector", {}).items())))],
    "PersistentVolume": [NAME, ("Capacity", "string", 0, lambda o: _g(o, "spec.capacity.storage", "")),
                         ("Access Modes", "string", 0, lambda o: _modes(o, "spec.accessModes")),
                         ("Reclaim Policy", "string", 0, lambda o: _g(o, "spec.persistentVolumeReclaimPolicy", "")),
                         ("Status", "string", 0, lambda o: _g(o, "status.phase", "")),
                         ("Claim", "string", 0, _claim),
                         ("StorageClass", "string", 0, lambda o: _g(o, "spec.storageClassName", "")),
                         ("VolumeAttributesClass", "string", 0,
                          lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>")),
                         ("Reason", "string", 0, lambda o: _g(o, "status.reason", "")), AGE,
                         ("VolumeMode", "string", 1, lambda o: _g(o, "spec.volumeMode", ""))],
    "PersistentVolumeClaim": [NAME, ("Status", "string", 0, lambda o: _g(o, "status.phase", "")),
                              ("Volume", "string", 0, lambda o: _g(o, "spec.volumeName", "")),
                              ("Capacity", "string", 0, lambda o: _g(o, "status.capacity.storage", "")),
                              ("Access Modes", "string", 0, lambda o: _modes(o, "status.accessModes")),
                              ("StorageClass", "string", 0, lambda o: _g(o, "spec.storageClassName", "")),
                              ("VolumeAttributesClass", "string", 0,
                               lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>")), AGE,
                              ("VolumeMode", "string", 1, lambda o: _g(o, "spec.volumeMode", ""))],
    "ResourceQuota": [NAME, AGE, ("Request", "string", 0, lambda o: _quota(o, False)),
                      ("Limit", "string", 0, lambda o: _quota(o, True))],
    "LimitRange": [NAME, ("Created At", "date", 0, lambda o: _g(o, "metadata.creationTimestamp"))],
    "PodTemplate": [NAME, ("Containers", "string", 0, lambda o: ",".join(
        str(c.get("name")) for c in _g(o, "template.spec.containers", []))),
        ("Images", "string", 0, lambda o: ",".join(str(c.get("image")) for c in _g(o, "template.spec.containers", []))),
        ("Pod Labels", "string", 0, lambda o: ",".join(
            f"{k}={v}" for k, v in sorted(_g(o, "template.metadata.labels", {}).items())))],
    "StatefulSet": [NAME, ("Ready", "string", 0, lambda o: f"{_g(o, 'status.readyReplicas', 0)}/{_g(o, 'spec.replicas', 0)}"),
                    AGE, CONTAINERS, IMAGES],
    "ControllerRevision": [NAME, ("Controller", "string", 0, lambda o: next(
        (f"{r.get('kind', '').lower()}.{r.get('apiVersion', '').split('/')[0]}/{r.get('name')}"
         for r in _g(o, "metadata.ownerReferences", []) if r.get("controller")), "<none>")),
        ("Revision", "integer", 0, lambda o: o.get("revision", 0)), AGE],
    "CronJob": [NAME, ("Schedule", "string", 0, lambda o: _g(o, "spec.schedule", "")),
                ("Timezone", "string", 0, lambda o: _g(o, "spec.timeZone", "<none>")),
                ("Suspend", "boolean", 0, lambda o: "True" if _g(o, "spec.suspend") else "False"),
                ("Active", "integer", 0, lambda o: len(_g(o, "status.active", []))),
                ("Last Schedule", "string", 0, lambda o: age({"metadata": {"creationTimestamp":
                                                                           _g(o, "status.lastScheduleTime")}})
                 if _g(o, "status.lastScheduleTime") else "<none>"), AGE,
                ("Containers", "string", 1, lambda o: ",".join(
                    str(c.get("name")) for c in _g(o, "spec.jobTemplate.spec.template.spec.containers", []))),
                ("Images", "string", 1, lambda o: ",".join(
                    str(c.get("image")) for c in _g(o, "spec.jobTemplate.spec.template.spec.containers", []))),
                ("Selector", "string", 1, lambda o: format_label_selector(_g(o, "spec.jobTemplate.spec.selector"))
                 or "<none>")],
    "PodDisruptionBudget": [NAME, ("Min Available", "string", 0, _int_or_na("spec.minAvailable")),
                            ("Max Unavailable", "string", 0, _int_or_na("spec.maxUnavailable")),
                            ("Allowed Disruptions", "integer", 0, lambda o: _g(o, "status.disruptionsAllowed", 0)),
                            AGE],
    "PriorityClass": [NAME, ("Value", "integer", 0, lambda o: o.get("value", 0)),
                      ("Global-Default", "boolean", 0, lambda o: bool(o.get("globalDefault", False))), AGE,
                      ("PreemptionPolicy", "string", 0, lambda o: o.get("preemptionPolicy", ""))],
    "NetworkPolicy": [NAME, ("Pod-Selector", "string", 0, lambda o: format_label_selector(
        _g(o, "spec.podSelector")) or "<none>"), AGE],
    "Ingress": [NAME, ("Class", "string", 0, lambda o: _g(o, "spec.ingressClassName", "<none>")),
                ("Hosts", "string", 0, _ingress_hosts), ("Address", "string", 0, _lb),
                ("Ports", "string", 0, lambda o: "80, 443" if _g(o, "spec.tls") else "80"), AGE],
    "IngressClass": [NAME, ("Controller", "string", 0, lambda o: _g(o, "spec.controller", "")),
                     ("Parameters", "string", 0, lambda o: "<none>" if not _g(o, "spec.parameters") else
                      f"{_g(o, 'spec.parameters.kind')}/{_g(o, 'spec.parameters.name')}"), AGE],
    "HorizontalPodAutoscaler": [NAME, ("Reference", "string", 0, lambda o: f"{_g(o, 'spec.scaleTargetRef.kind')}/"
                                       f"{_g(o, 'spec.scaleTargetRef.name')}"),
                                ("Targets", "string", 0, _hpa_targets),
                                ("MinPods", "string", 0, lambda o: str(_g(o, "spec.minReplicas", "<unset>"))),
                                ("MaxPods", "integer", 0, lambda o: _g(o, "spec.maxReplicas", 0)),
                                ("Replicas", "integer", 0, lambda o: _g(o, "status.currentReplicas", 0)), AGE],
    "StorageClass": [("Name", "string", 0, _default_mark), ("Provisioner", "string", 0, lambda o: o.get("provisioner", "")),
                     ("ReclaimPolicy", "string", 0, lambda o: o.get("reclaimPolicy", "")),
                     ("VolumeBindingMode", "string", 0, lambda o: o.get("volumeBindingMode", "")),
                     ("AllowVolumeExpansion", "string", 0, lambda o: str(bool(o.get("allowVolumeExpansion"))).lower()),
                     AGE],
    "CustomResourceDefinition": [NAME, ("Created At", "date", 0, lambda o: _g(o, "metadata.creationTimestamp"))],
    "APIService": [NAME, ("Service", "string", 0, lambda o: "Local" if not _g(o, "spec.service") else
                          f"{_g(o, 'spec.service.namespace')}/{_g(o, 'spec.service.name')}"),
                   ("Available", "string", 0, _available), AGE],
})


def table(kind: str, objs: list[dict], list_meta: dict, include: str = "Metadata") -> dict:
    cols = COLUMNS.get(kind) or CUSTOM_COLUMNS.get(kind) or [NAME, AGE]
    rows = []
    for o in objs:
        cells = []
        for _, _, _, fn in cols:
            try:
                cells.append(fn(o))
            except Exception:  # a malformed stored object must not break listing
                cells.append("<unknown>")
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o.get("metadata", {})}
        rows.append(row)
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n,
             "priority": p} for n, t, p, _ in cols],
        "rows": rows,
    }
